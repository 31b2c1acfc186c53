using System.Diagnostics;

namespace ExpertBridge.Native.Tests;

/// <summary>
/// The C side: expertbridge.h compiles as C11 and C++17 (gcc/g++ here), and the native ABI test program that
/// build.ps1 builds into artifacts/native/tests passes (misuse, threads, after-destroy).
/// </summary>
public class NativeToolchainTests
{
    private static readonly string s_root = FindRoot();

    [Theory]
    [InlineData("gcc", "-std=c11", "header_c11.c")]
    [InlineData("g++", "-std=c++17", "header_cxx17.cpp")]
    public void Header_Compiles_WithWarningsAsErrors(string compiler, string standard, string source)
    {
        if (!OnPath(compiler))
        {
            Assert.Skip($"{compiler} is not installed");
        }

        var output = Path.Combine(Path.GetTempPath(), $"eb-header-{Guid.NewGuid():N}.o");
        var (code, text) = Run(compiler, $"{standard} -Wall -Wextra -Wpedantic -Werror -c -I \"{Path.Combine(s_root, "src/ExpertBridge.Native/include")}\" \"{Path.Combine(s_root, "tests/native", source)}\" -o \"{output}\"");
        File.Delete(output);

        Assert.True(code == 0, text);
    }

    [Fact]
    public void AbiTests_NativeProgram_PassesEveryCheck()
    {
        var program = Path.Combine(s_root, "artifacts/native/tests/eb_abi_tests");
        if (!File.Exists(program))
        {
            Assert.Skip($"{program} is not built: run `dotnet pwsh ./build.ps1 build` (it builds the native parts)");
        }

        var (code, text) = Run(program, "");

        Assert.True(code == 0, text);
        Assert.Matches(@"(?m)^\d+ passed, 0 failed$", text);
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, program)));

    private static (int Code, string Output) Run(string program, string arguments)
    {
        using var p = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            return (-1, "timed out");
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Bridge.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (Bridge.sln) above " + AppContext.BaseDirectory);
    }
}
