namespace ExpertBridge.Scripting.Tests;

/// <summary>
/// <see cref="JitStartupProfile"/>: where the profile goes, what it replaces, and that it starts once per process
/// (the runtime's multicore JIT is process-wide). One test: the first successful start is the only one.
/// </summary>
public class JitStartupProfileTests
{
    [Fact]
    public void Start_OncePerProcess_InTheCache_ReplacingOnlyThisHostsOtherBuilds()
    {
        using var files = new PolicyFiles();
        var jit = Path.Combine(files.Cache, "jit");
        Directory.CreateDirectory(jit);
        var staleBuild = Path.Combine(jit, "test.0123456789abcdef-01234567.jitprofile");
        var otherHost = Path.Combine(jit, "test-x.0123456789abcdef-01234567.jitprofile");
        File.WriteAllText(staleBuild, "");
        File.WriteAllText(otherHost, "");
        var host = typeof(JitStartupProfileTests).Assembly;

        Assert.Null(JitStartupProfile.Start("test", host, files.Options() with { UseCache = false }));
        Assert.Throws<ArgumentException>(() => JitStartupProfile.Start("Test Host", host, files.Options()));
        Assert.True(File.Exists(staleBuild)); // neither call touched the cache
        var path = JitStartupProfile.Start("test", host, files.Options());

        if (Environment.ProcessorCount < 2)
        {
            Assert.Null(path); // the runtime ignores profiles on one core
            return;
        }

        Assert.NotNull(path);
        Assert.Equal(jit, Path.GetDirectoryName(path));
        Assert.Matches("^test\\.[0-9a-f]{16}-[0-9a-f]{8}\\.jitprofile$", Path.GetFileName(path));
        Assert.False(File.Exists(staleBuild));
        Assert.True(File.Exists(otherHost));
        Assert.Null(JitStartupProfile.Start("test", host, files.Options()));

        JitStartupProfile.Save(); // written now, not at the process's end
        Assert.True(File.Exists(path));
        var written = File.GetLastWriteTimeUtc(path);
        JitStartupProfile.Save(); // once
        Assert.Equal(written, File.GetLastWriteTimeUtc(path));
    }
}
