namespace ExpertBridge.Scripting.Tests;

public class WatcherTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>A host watching the sample script, with every reload it reports.</summary>
    private sealed class WatchedSample : IDisposable
    {
        private readonly TaskCompletionSource<PolicyReloadResult> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<PolicyReloadResult> _reloads = [];

        private WatchedSample(PolicyHost host, string path)
        {
            Host = host;
            Path = path;
            host.Reloaded += (_, r) =>
            {
                lock (_reloads)
                {
                    _reloads.Add(r);
                }

                _first.TrySetResult(r);
            };
        }

        public PolicyHost Host { get; }

        public string Path { get; }

        public int ReloadCount
        {
            get
            {
                lock (_reloads)
                {
                    return _reloads.Count;
                }
            }
        }

        public static async Task<WatchedSample> OpenAsync(PolicyFiles files, TimeSpan? debounce = null)
        {
            var path = files.WriteSample();
            return new WatchedSample(await PolicyResolver.OpenAsync(path, files.Options(watch: true, debounce: debounce), Token), path);
        }

        public Task<PolicyReloadResult> FirstReload() => Within(_first.Task, "the reload");

        public void Dispose() => Host.Dispose();
    }

    private static async Task<T> Within<T>(Task<T> task, string what)
    {
        var done = await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(30), Token));
        Assert.True(done == task, $"timed out waiting for {what}");
        return await task;
    }

    private static string SampleWithShift(int shift) => PolicyFiles.SampleScript.Replace("shift = 1", $"shift = {shift}", StringComparison.Ordinal);

    [Fact]
    public async Task Watch_BurstOfWrites_CoalescesIntoOneReload()
    {
        using var files = new PolicyFiles();

        // A quiet period far above the gaps of the burst (30 ms), so a loaded machine cannot split it.
        using var watched = await WatchedSample.OpenAsync(files, TimeSpan.FromSeconds(1));
        for (var shift = 2; shift <= 6; shift++)
        {
            File.WriteAllText(watched.Path, SampleWithShift(shift));
            await Task.Delay(30, Token);
        }

        var result = await watched.FirstReload();
        await Task.Delay(1500, Token);

        Assert.Equal(PolicyReloadStatus.Loaded, result.Status);
        Assert.Equal(1, watched.ReloadCount);
        Assert.Equal(2, watched.Host.Version);
        Assert.Equal("rotated by 6", watched.Host.Invoke(PolicyFiles.Context()).Reason);
    }

    [Fact]
    public async Task Watch_TouchAndSameContentRewrite_DoNotReload()
    {
        using var files = new PolicyFiles();
        using var watched = await WatchedSample.OpenAsync(files);
        var watcher = watched.Host.Watcher!;
        var checkedOnce = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.Checked += changed => checkedOnce.TrySetResult(changed);

        File.SetLastWriteTimeUtc(watched.Path, DateTime.UtcNow.AddMinutes(1));
        File.WriteAllText(watched.Path, PolicyFiles.SampleScript);
        var changed = await Within(checkedOnce.Task, "the watcher's check");

        Assert.False(changed);
        Assert.True(watcher.UnchangedChecks >= 1);
        Assert.Equal(0, watcher.ReloadsTriggered);
        Assert.Equal(0, watched.ReloadCount);
        Assert.Equal(1, watched.Host.Version);
    }

    [Fact]
    public async Task Watch_DeployByRename_Reloads()
    {
        using var files = new PolicyFiles();
        using var watched = await WatchedSample.OpenAsync(files);

        File.WriteAllText(watched.Path + ".tmp", SampleWithShift(3));
        File.Move(watched.Path + ".tmp", watched.Path, overwrite: true);
        var result = await watched.FirstReload();

        Assert.Equal(PolicyReloadStatus.Loaded, result.Status);
        Assert.Equal("rotated by 3", watched.Host.Invoke(PolicyFiles.Context()).Reason);
    }

    [Fact]
    public async Task Watch_LoadedFileEdit_Reloads()
    {
        using var files = new PolicyFiles();
        using var watched = await WatchedSample.OpenAsync(files);

        files.Write("lib/rotate.lib.csx", PolicyFiles.RotateLibrary.Replace("\"rotate\"", "\"rotate-2\"", StringComparison.Ordinal));
        var result = await watched.FirstReload();

        Assert.Equal(PolicyReloadStatus.Loaded, result.Status);
        Assert.Equal("rotate-2", watched.Host.Name);
        Assert.Contains(Path.Combine(files.Policies, "lib"), watched.Host.Watcher!.Directories);
    }

    [Fact]
    public async Task Watch_BrokenEdit_KeepsVersionAndReportsDiagnostics()
    {
        using var files = new PolicyFiles();
        using var watched = await WatchedSample.OpenAsync(files);

        File.WriteAllText(watched.Path, PolicyFiles.SampleScript + "\nthis is not C#\n");
        var result = await watched.FirstReload();

        Assert.Equal(PolicyReloadStatus.Failed, result.Status);
        Assert.Contains(result.Diagnostics, d => d.IsError && d.File == watched.Path);
        Assert.Equal(1, watched.Host.Version);
    }

    [Fact]
    public async Task Watcher_DirectoryMissing_FallsBackToPolling()
    {
        using var files = new PolicyFiles();
        var later = Path.Combine(files.Policies, "later", "x.csx");
        var changed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var watcher = new PolicyWatcher(
            _ =>
            {
                changed.TrySetResult(true);
                return Task.CompletedTask;
            },
            TimeSpan.FromMilliseconds(50),
            TimeSpan.FromMilliseconds(100),
            polling: false,
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        watcher.Track([later], PolicySourceSet.HashFiles([later], _ => null));
        Assert.True(watcher.IsPolling);
        files.Write(Path.Combine("later", "x.csx"), "return new TrivialPolicy();");

        Assert.True(await Within(changed.Task, "the poll to see the new file"));
        Assert.Equal(1, watcher.ReloadsTriggered);
    }
}
