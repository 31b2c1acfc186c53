namespace ExpertBridge.Scripting.Tests;

public class ApiGuardTests
{
    public static TheoryData<string, string, string> Forbidden => new()
    {
        { "System.IO.File.ReadAllText(\"/etc/hostname\");", "System.IO.File", PolicyApiGuard.RuleFileSystem },
        { "using F = System.IO.File;", "System.IO.File", PolicyApiGuard.RuleFileSystem },
        { "using static System.IO.File;\nvar ok = Exists(\"x\");", "System.IO.File.Exists", PolicyApiGuard.RuleFileSystem },
        { "var info = new System.IO.FileInfo(\"x\");", "System.IO.FileInfo", PolicyApiGuard.RuleFileSystem },
        { "System.Diagnostics.Process.Start(\"ls\");", "System.Diagnostics.Process", PolicyApiGuard.RuleProcesses },
        { "using System.Diagnostics;\nvar p = Process.GetCurrentProcess();", "System.Diagnostics.Process", PolicyApiGuard.RuleProcesses },
        { "var client = new System.Net.Http.HttpClient();", "System.Net.Http.HttpClient", PolicyApiGuard.RuleNetwork },
        { "var ip = System.Net.IPAddress.Loopback;", "System.Net.IPAddress", PolicyApiGuard.RuleNetwork },
        { "var m = typeof(int).GetMethod(\"Parse\");", "System.Type.GetMethod", PolicyApiGuard.RuleReflection },
        { "var t = 1.GetType();", "System.Type", PolicyApiGuard.RuleReflection },
        { "var a = System.Reflection.Emit.AssemblyBuilder.DefineDynamicAssembly(null!, default);", "System.Reflection.Emit.AssemblyBuilder", PolicyApiGuard.RuleReflection },
        { "var o = Activator.CreateInstance(typeof(object));", "System.Activator", PolicyApiGuard.RuleReflection },
        { "unsafe { int x = 1; int* p = &x; }", "an unsafe block", PolicyApiGuard.RuleUnsafe },
        { "[System.Runtime.InteropServices.DllImport(\"libc\")] static extern int getpid();", "an extern method (P/Invoke)", PolicyApiGuard.RuleUnsafe },
        { "var h = System.Runtime.InteropServices.Marshal.AllocHGlobal(8);", "System.Runtime.InteropServices.Marshal", PolicyApiGuard.RuleUnsafe },
        { "var lib = System.Runtime.InteropServices.NativeLibrary.Load(\"libc\");", "System.Runtime.InteropServices.NativeLibrary", PolicyApiGuard.RuleUnsafe },
        { "delegate*<void> f = null;", "a function pointer", PolicyApiGuard.RuleUnsafe },
        { "int n = System.Runtime.CompilerServices.Unsafe.SizeOf<int>();", "System.Runtime.CompilerServices.Unsafe", PolicyApiGuard.RuleUnsafe },
        { "new System.Threading.Thread(() => { }).Start();", "System.Threading.Thread", PolicyApiGuard.RuleThreads },
        { "var timer = new System.Threading.Timer(_ => { }, null, 0, 0);", "System.Threading.Timer", PolicyApiGuard.RuleThreads },
        { "var task = System.Threading.Tasks.Task.Run(() => 1);", "System.Threading.Tasks.Task.Run", PolicyApiGuard.RuleThreads },
        { "var factory = System.Threading.Tasks.Task<int>.Factory;", "System.Threading.Tasks.Task<TResult>.Factory", PolicyApiGuard.RuleThreads },
        { "var home = Environment.GetEnvironmentVariable(\"HOME\");", "System.Environment", PolicyApiGuard.RuleEnvironment },
        { "Console.WriteLine(\"hi\");", "System.Console", PolicyApiGuard.RuleEnvironment },
        { "GC.Collect();", "System.GC", PolicyApiGuard.RuleEnvironment },
    };

    [Theory]
    [MemberData(nameof(Forbidden))]
    public void Compile_ForbiddenApi_RefusedWithSymbolAndRule(string code, string symbol, string rule)
    {
        using var files = new PolicyFiles();
        var path = files.Write("forbidden.csx", $"// forbidden\n{code}\nreturn new TrivialPolicy();\n");

        var result = PolicyResolver.CreateCompiler(files.Options()).Compile(PolicySourceSet.Read(path), useCache: false, TestContext.Current.CancellationToken);

        Assert.False(result.Success);
        var hit = Assert.Single(result.Diagnostics, d => d.Message == $"{symbol} is not allowed in policies (rule: {rule})");
        Assert.Equal(path, hit.File);
        Assert.Equal(ScriptDiagnostic.ForbiddenApiId, hit.Id);
        Assert.InRange(hit.Line, 2, 1 + code.Split('\n').Length);
        Assert.DoesNotContain(result.Diagnostics, d => d.Id is "CS0227" or "CS0214");
    }

    [Fact]
    public void Compile_ForbiddenApiInLoadedFile_ReportedAtThatFile()
    {
        using var files = new PolicyFiles();
        var lib = files.Write("lib/sneaky.csx", "public static class Sneaky\n{\n    public static string Read() => System.IO.File.ReadAllText(\"x\");\n}\n");
        var path = files.Write("main.csx", "#load \"lib/sneaky.csx\"\nreturn new TrivialPolicy();\n");

        var result = PolicyResolver.CreateCompiler(files.Options()).Compile(PolicySourceSet.Read(path), useCache: false, TestContext.Current.CancellationToken);

        var hit = Assert.Single(result.Diagnostics, d => d.Id == ScriptDiagnostic.ForbiddenApiId);
        Assert.Equal((lib, 3), (hit.File, hit.Line));
        Assert.StartsWith($"{lib}:3:", hit.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_PureComputation_Allowed()
    {
        using var files = new PolicyFiles();
        var path = files.Write("pure.csx", """
            // pure: the things policies do use
            using System.Diagnostics;
            using System.Threading;
            var clock = Stopwatch.StartNew();
            static int Scratch() { Span<int> buffer = stackalloc int[4]; buffer[0] = 1; return buffer[0]; }
            var queue = new PriorityQueue<int, double>();
            queue.Enqueue(1, Math.Sqrt(2));
            var total = Enumerable.Range(0, 10).Select(i => i * 2).Where(i => i > 3).Sum();
            var counter = 0;
            Interlocked.Increment(ref counter);
            var token = CancellationToken.None;
            token.ThrowIfCancellationRequested();
            var sorted = new SortedSet<int> { 3, 1, 2 };
            var vector = System.Numerics.Vector<float>.Count;
            var lockObject = new object();
            lock (lockObject) { counter += total + sorted.Count + vector + Scratch(); }
            return new TrivialPolicy();
            """);

        var compiler = PolicyResolver.CreateCompiler(files.Options());
        var result = compiler.Compile(PolicySourceSet.Read(path), useCache: false, TestContext.Current.CancellationToken);

        Assert.True(result.Success, string.Join("\n", result.Diagnostics));
        Assert.Equal(0, compiler.GuardWalks);
    }

    [Fact]
    public void Compile_CleanPolicy_SkipsSourceWalk_ForbiddenUseDoesNot()
    {
        using var files = new PolicyFiles();
        var clean = files.WriteSample();
        var sneaky = files.Write("sneaky.csx", "// sneaky: reaches System.Type through an inferred local\nvar t = new object().GetType();\nvar n = t.Name;\nreturn new TrivialPolicy();\n");
        var compiler = PolicyResolver.CreateCompiler(files.Options());

        var ok = compiler.Compile(PolicySourceSet.Read(clean), useCache: false, TestContext.Current.CancellationToken);
        var walksAfterClean = compiler.GuardWalks;
        var refused = compiler.Compile(PolicySourceSet.Read(sneaky), useCache: false, TestContext.Current.CancellationToken);

        Assert.True(ok.Success);
        Assert.Equal(0, walksAfterClean);
        Assert.False(refused.Success);
        Assert.Equal(1, compiler.GuardWalks);
        Assert.Contains(refused.Diagnostics, d => d.Message == $"System.Type is not allowed in policies (rule: {PolicyApiGuard.RuleReflection})");
    }
}
