using System.Text;

namespace ExpertBridge.Cli.Output;

/// <summary>A plain-text table: left-aligned text columns (the first, by default), right-aligned numbers, two spaces between columns.</summary>
internal sealed class TextTable
{
    private readonly string[] _headers;
    private readonly List<string[]> _rows = [];

    public TextTable(params string[] headers)
    {
        _headers = headers;
    }

    /// <summary>How many leading columns hold text and are left-aligned (default 1).</summary>
    public int TextColumns { get; init; } = 1;

    public void Add(params string[] cells)
    {
        if (cells.Length != _headers.Length)
        {
            throw new ArgumentException($"row has {cells.Length} cells, the table has {_headers.Length} columns", nameof(cells));
        }

        _rows.Add(cells);
    }

    public void WriteTo(TextWriter output)
    {
        var widths = new int[_headers.Length];
        foreach (var row in _rows.Prepend(_headers))
        {
            for (var c = 0; c < row.Length; c++)
            {
                widths[c] = Math.Max(widths[c], row[c].Length);
            }
        }

        var line = new StringBuilder();
        foreach (var row in _rows.Prepend(_headers))
        {
            line.Clear();
            for (var c = 0; c < row.Length; c++)
            {
                if (c > 0)
                {
                    line.Append("  ");
                }

                line.Append(c < TextColumns ? row[c].PadRight(widths[c]) : row[c].PadLeft(widths[c]));
            }

            output.WriteLine(line.ToString().TrimEnd());
        }
    }
}
