using System.Runtime.InteropServices;

namespace ExpertBridge.Benchmarks;

/// <summary>
/// CPU time of the calling thread (Linux, CLOCK_THREAD_CPUTIME_ID): on a shared machine wall-clock time measures the
/// neighbours, thread CPU time only this thread's work. Shared with tests/ExpertBridge.Policies.Evaluation (linked).
/// </summary>
internal static class ThreadClock
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int ClockGetTime(int clock, out Timespec time);

    public static double Milliseconds()
    {
        if (ClockGetTime(ClockThreadCpuTimeId, out var t) != 0)
        {
            throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        }

        return (t.Seconds * 1e3) + (t.Nanoseconds / 1e6);
    }
}
