namespace ExpertBridge.Core.Policies;

/// <summary>
/// Minimum-cost perfect assignment on a dense n x n integer cost matrix: the Hungarian method in its
/// shortest-augmenting-path form with row and column potentials (Jonker-Volgenant style), O(n^3) worst case and
/// close to O(n^2) when most rows find a free best column at once (ties prefer a free column, which matters for the
/// many equal costs of relabelling). Deterministic: rows are added in index order, and among columns of least reduced
/// cost the first free one, else the first one, is taken. One instance holds the scratch for one size and is reused.
/// </summary>
internal sealed class LinearAssignment
{
    private readonly int _n;
    private readonly long[] _rowPotential;
    private readonly long[] _colPotential;
    private readonly int[] _rowOfCol;
    private readonly int[] _prevCol;
    private readonly long[] _minSlack;
    private readonly bool[] _visited;

    public LinearAssignment(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        _n = n;
        // Index 0 is the virtual column the augmenting search starts from; real rows and columns are 1-based.
        _rowPotential = new long[n + 1];
        _colPotential = new long[n + 1];
        _rowOfCol = new int[n + 1];
        _prevCol = new int[n + 1];
        _minSlack = new long[n + 1];
        _visited = new bool[n + 1];
    }

    /// <summary>
    /// Fills <paramref name="colOfRow"/> (length n) with the column assigned to each row so that the summed
    /// <c>cost[row * n + col]</c> is least. Returns that sum.
    /// </summary>
    public long Solve(ReadOnlySpan<int> cost, Span<int> colOfRow)
    {
        var n = _n;
        if (cost.Length != n * n || colOfRow.Length != n)
        {
            throw new ArgumentException($"expected an {n}x{n} cost matrix and {n} outputs");
        }

        Array.Clear(_rowPotential);
        Array.Clear(_colPotential);
        Array.Clear(_rowOfCol);
        for (var row = 1; row <= n; row++)
        {
            _rowOfCol[0] = row;
            var col = 0;
            Array.Fill(_minSlack, long.MaxValue);
            Array.Clear(_visited);
            do
            {
                _visited[col] = true;
                var r = _rowOfCol[col];
                var delta = long.MaxValue;
                var next = 0;
                var costRow = cost.Slice((r - 1) * n, n);
                for (var j = 1; j <= n; j++)
                {
                    if (_visited[j])
                    {
                        continue;
                    }

                    var slack = costRow[j - 1] - _rowPotential[r] - _colPotential[j];
                    if (slack < _minSlack[j])
                    {
                        _minSlack[j] = slack;
                        _prevCol[j] = col;
                    }

                    // Among columns of equal least slack, a free one ends the search at once.
                    if (_minSlack[j] < delta || (_minSlack[j] == delta && _rowOfCol[j] == 0 && _rowOfCol[next] != 0))
                    {
                        delta = _minSlack[j];
                        next = j;
                    }
                }

                for (var j = 0; j <= n; j++)
                {
                    if (_visited[j])
                    {
                        _rowPotential[_rowOfCol[j]] += delta;
                        _colPotential[j] -= delta;
                    }
                    else
                    {
                        _minSlack[j] -= delta;
                    }
                }

                col = next;
            }
            while (_rowOfCol[col] != 0);

            // Flip the augmenting path back to the virtual column.
            do
            {
                var prev = _prevCol[col];
                _rowOfCol[col] = _rowOfCol[prev];
                col = prev;
            }
            while (col != 0);
        }

        long total = 0;
        for (var j = 1; j <= n; j++)
        {
            var row = _rowOfCol[j] - 1;
            colOfRow[row] = j - 1;
            total += cost[(row * n) + j - 1];
        }

        return total;
    }
}
