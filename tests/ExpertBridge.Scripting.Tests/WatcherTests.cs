namespace ExpertBridge.Scripting.Tests;

public class WatcherTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task<T> Within<T>(Task<T> task, string what)
    {
        var done = await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(30), Token));
        Assert.True(done == task, $"timed out waiting for {what}");
        return await task;
    }

    [Fact]
    public async Task Watch_BurstOfWrites_CoalescesIntoOneReload()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        using var host = await PolicyResolver.OpenAsync(path, files.Options(watch: true), Token);
        var reloads = new List<PolicyReloadResult>();
        var first = new TaskCompletionSource<PolicyReloadResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Reloaded += (_, r) =>
        {
            lock (reloads)
            {
                reloads.Add(r);
            }

            first.TrySetResult(r);
        };

        for (var shift = 2; shift <= 6; shift++)
        {
            File.WriteAllText(path, PolicyFiles.SampleScript.Replace("shift = 1", $"shift = {shift}", StringComparison.Ordinal));
            await Task.Delay(30, Token);
        }

        var result = await Within(first.Task, "the reload");
        await Task.Delay(1000, Token);

        Assert.Equal(PolicyReloadStatus.Loaded, result.Status);
        lock (reloads)
        {
            Assert.Single(reloads);
        }

        Assert.Equal(2, host.Version);
        Assert.Equal("rotated by 6", host.Invoke(PolicyFiles.Context()).Reason);
    }

    [Fact]
    public async Task Watch_TouchAndSameContentRewrite_DoNotReload()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        using var host = await PolicyResolver.OpenAsync(path, files.Options(watch: true), Token);
        var checkedOnce = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Watcher!.Checked += changed => checkedOnce.TrySetResult(changed);

        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(1));
        File.WriteAllText(path, PolicyFiles.SampleScript);
        var changed = await Within(checkedOnce.Task, "the watcher's check");

        Assert.False(changed);
        Assert.True(host.Watcher.UnchangedChecks >= 1);
        Assert.Equal(0, host.Watcher.ReloadsTriggered);
        Assert.Equal(1, host.Version);
    }

    [Fact]
    public async Task Watch_DeployByRename_ReloadsOnce()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        using var host = await PolicyResolver.OpenAsync(path, files.Options(watch: true), Token);
        var reloaded = new TaskCompletionSource<PolicyReloadResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Reloaded += (_, r) => reloaded.TrySetResult(r);

        File.WriteAllText(path + ".tmp", PolicyFiles.SampleScript.Replace("shift = 1", "shift = 3", StringComparison.Ordinal));
        File.Move(path + ".tmp", path, overwrite: true);
        var result = await Within(reloaded.Task, "the reload");

        Assert.Equal(PolicyReloadStatus.Loaded, result.Status);
        Assert.Equal("rotated by 3", host.Invoke(PolicyFiles.Context()).Reason);
    }

    [Fact]
    public async Task Watch_LoadedFileEdit_Reloads()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        using var host = await PolicyResolver.OpenAsync(path, files.Options(watch: true), Token);
        var reloaded = new TaskCompletionSource<PolicyReloadResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Reloaded += (_, r) => reloaded.TrySetResult(r);

        files.Write("lib/rotate.lib.csx", PolicyFiles.RotateLibrary.Replace("\"rotate\"", "\"rotate-2\"", StringComparison.Ordinal));
        var result = await Within(reloaded.Task, "the reload");

        Assert.Equal(PolicyReloadStatus.Loaded, result.Status);
        Assert.Equal("rotate-2", host.Name);
        Assert.Contains(Path.Combine(files.Policies, "lib"), host.Watcher!.Directories);
    }

    [Fact]
    public async Task Watch_BrokenEdit_KeepsVersionAndReportsDiagnostics()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        using var host = await PolicyResolver.OpenAsync(path, files.Options(watch: true), Token);
        var reloaded = new TaskCompletionSource<PolicyReloadResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Reloaded += (_, r) => reloaded.TrySetResult(r);

        File.WriteAllText(path, PolicyFiles.SampleScript + "\nthis is not C#\n");
        var result = await Within(reloaded.Task, "the reload");

        Assert.Equal(PolicyReloadStatus.Failed, result.Status);
        Assert.Contains(result.Diagnostics, d => d.IsError && d.File == path);
        Assert.Equal(1, host.Version);
    }

    [Fact]
    public async Task Watcher_DirectoryMissing_FallsBackToPolling()
    {
        using var files = new PolicyFiles();
        var later = Path.Combine(files.Policies, "later", "x.csx");
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var watcher = new PolicyWatcher(
            _ =>
            {
                changed.TrySetResult();
                return Task.CompletedTask;
            },
            TimeSpan.FromMilliseconds(50),
            TimeSpan.FromMilliseconds(100),
            polling: false,
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        watcher.Track([later], PolicySourceSet.HashFiles([later], _ => null));
        Assert.True(watcher.IsPolling);
        files.Write(Path.Combine("later", "x.csx"), "return new TrivialPolicy();");

        await Within(changed.Task.ContinueWith(_ => true, Token), "the poll to see the new file");
        Assert.Equal(1, watcher.ReloadsTriggered);
    }
}
