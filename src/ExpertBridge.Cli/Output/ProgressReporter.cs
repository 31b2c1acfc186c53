using System.Diagnostics;
using System.Globalization;
using ExpertBridge.Core.Replay;

namespace ExpertBridge.Cli.Output;

/// <summary>How progress is shown.</summary>
internal enum ProgressMode
{
    /// <summary>Nothing (<c>--quiet</c>).</summary>
    None,

    /// <summary>A line at every tenth of the work: for logs and redirected output.</summary>
    Lines,

    /// <summary>A bar redrawn in place: for a terminal.</summary>
    Bar,
}

/// <summary>
/// Draws replay progress on stderr: a bar redrawn in place on a terminal (at most ten times a second), a plain
/// line per tenth when redirected, nothing when quiet. Reports arrive synchronously from the replay loop.
/// </summary>
internal sealed class ProgressReporter : IProgress<ReplayProgress>, IDisposable
{
    private const int BarWidth = 30;
    private static readonly long s_redrawTicks = Stopwatch.Frequency / 10;
    private readonly TextWriter _out;
    private readonly ProgressMode _mode;
    private readonly string _label;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _lastDraw = -s_redrawTicks; // the first report draws (and never overflows the subtraction)
    private int _lastTenth = -1;
    private bool _barOpen;

    public ProgressReporter(TextWriter output, ProgressMode mode, string label)
    {
        _out = output;
        _mode = mode;
        _label = label;
    }

    public void Report(ReplayProgress value)
    {
        var done = value.Step >= value.Steps;
        switch (_mode)
        {
            case ProgressMode.Lines:
                var tenth = (int)(value.Fraction * 10);
                if (tenth > _lastTenth && tenth > 0)
                {
                    _lastTenth = tenth;
                    _out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{_label}: {tenth * 10}% (step {value.Step}/{value.Steps}, {_clock.Elapsed.TotalSeconds:0.0} s)"));
                }

                break;
            case ProgressMode.Bar:
                var now = _clock.ElapsedTicks;
                if (done || now - _lastDraw >= s_redrawTicks)
                {
                    _lastDraw = now;
                    var filled = (int)Math.Round(value.Fraction * BarWidth);
                    _out.Write(string.Create(CultureInfo.InvariantCulture, $"\r{_label} [{new string('#', filled)}{new string('.', BarWidth - filled)}] {value.Fraction * 100,3:0}% step {value.Step}/{value.Steps} {_clock.Elapsed.TotalSeconds:0.0} s"));
                    _barOpen = true;
                }

                break;
            case ProgressMode.None:
            default:
                break;
        }
    }

    /// <summary>Ends the bar's line.</summary>
    public void Dispose()
    {
        if (_barOpen)
        {
            _out.WriteLine();
            _barOpen = false;
        }
    }
}
