// OmniPlacement, the per-layer solver: the local search, kicks, candidates, swap screens and spare slots.
// Part of the library that policies/lib/omniplacement.lib.csx loads (the algorithm is described there); only
// using-directives and type declarations, so it also compiles as ordinary C#.
using System;
using System.Threading;

internal sealed partial class OmniLayerSolver
{
    /// <summary>
    /// Local search from the current state, in two phases when the objective has scenarios (peak-sum form): first the
    /// search below on the prediction alone (the scenario rows are neither scored nor kept up to date, which halves
    /// a search: one source device instead of two, one row instead of five), kicking only where the predicted
    /// imbalance is above <see cref="FirstPhaseKickAbove"/> (or <paramref name="kickAbove"/> if higher), since below it
    /// those kicks mostly fail; then the same search on the whole objective from where the first phase stopped, which
    /// kicks only where the layer is still far from balance (predicted imbalance above <see cref="PolishKickAbove"/>, or
    /// <paramref name="kickAbove"/> if higher), and runs no split steps: the first phase took the splits the prediction
    /// pays for, and on the steady calls of fa7c5e1 only 26 of 217 / 9 of 127 / 6 of 82 (drifting / switching /
    /// stable) of the second phase's split steps paid, each costing a third of a candidate search, which finds
    /// re-replications too.
    /// The two phases are kept together only when, measured on the whole objective from the start, they pay for the
    /// slots they changed; else the layer is left as it was. A state where no single operation pays on the whole
    /// objective (what this search leaves) is searched as in the second phase only, so a second search on the same
    /// loads changes nothing. That test (a whole-objective candidate search) is made only up to
    /// <see cref="PolishKickAbove"/>: above it, such a state gets the second phase's kicks anyway, and in the Pareto
    /// replays of the three large cases (nine cadences) it found an operation in 3980 of the 3989 layer searches at
    /// 1.10 predicted imbalance or more (and none in 266 of the 3489 below).
    /// </summary>
    public int Search(double costPerWrite, int maxWrites, int allowance, double kickAbove, OmniWriteLog? log, CancellationToken cancellation)
    {
        if (_percentile || _scenarioRows < 2 || _w[0] >= 1)
        {
            return SearchSingle(costPerWrite, maxWrites, allowance, kickAbove, true, log, cancellation);
        }

        var floor = costPerWrite + _slack;
        var polishKickAbove = Math.Max(kickAbove, PolishKickAbove);
        if (PredictedImbalance <= polishKickAbove && FindBest(floor, maxWrites, allowance).Kind == OpKind.None)
        {
            return SearchSingle(costPerWrite, maxWrites, allowance, polishKickAbove, false, log, cancellation);
        }

        var start = WholeObjective();
        Array.Copy(_row, _searchStart, _row.Length);
        var mark = log?.OpCount ?? 0;
        var w0 = _w[0];
        _k1 = 1;
        _w[0] = 1;
        Refresh(-1, -1);
        int written;
        try
        {
            written = SearchSingle(costPerWrite, maxWrites, allowance, Math.Max(kickAbove, FirstPhaseKickAbove), true, log, cancellation);
        }
        finally
        {
            _k1 = _scenarioRows;
            _w[0] = w0;
            UpdateShares();
            _newLayer = true;
            Recompute(); // the replica lists are those Write kept up to date
        }

        written += SearchSingle(costPerWrite, maxWrites - written, allowance, polishKickAbove, false, log, cancellation);
        var changed = 0;
        for (var i = 0; i < _row.Length; i++)
        {
            changed += _row[i] != _searchStart[i] ? 1 : 0;
        }

        if (changed > 0 && start - WholeObjective() <= floor * changed)
        {
            Restore(_searchStart);
            log?.Rollback(mark);
            return 0;
        }

        return written;
    }

    /// <summary>
    /// The search on the objective as it stands. Each iteration first tries a cheap step (<see cref="SplitStep"/>: one
    /// more replica of an expert of the prediction's peak device, chosen on the prediction alone; only with
    /// <paramref name="splitSteps"/>, and not right after a candidate search applied an operation: the split step had
    /// failed just before it, and on the steady calls of fa7c5e1 it paid after such an operation only 24 of 112 / 12 of
    /// 65 / 8 of 40 times (drifting / switching / stable, first phase)); when that does not
    /// pay, it applies the operation with the highest net gain per slot write: a swap or move between a scenario's peak
    /// device and a cool device, a re-replication of a peak device's expert into a cool device's redundant or empty
    /// slot, or dropping a redundant replica from a peak device. When no single operation pays and the predicted
    /// imbalance is above <paramref name="kickAbove"/>, it tries a kick:
    /// one more replica of the peak device's heaviest expert, followed by the swaps that make room for it; the chain is
    /// kept only when, as a whole, it pays for its writes (else it is rolled back). Stops when nothing pays more than
    /// <paramref name="costPerWrite"/> per write, after <paramref name="maxWrites"/> writes, or at the iteration cap.
    /// Operations go to <paramref name="log"/> when given.
    /// </summary>
    private int SearchSingle(double costPerWrite, int maxWrites, int allowance, double kickAbove, bool splitSteps, OmniWriteLog? log, CancellationToken cancellation)
    {
        var floor = costPerWrite + _slack;
        var written = 0;
        var kicks = 0;
        var failures = 0;
        var searched = false;
        for (var iteration = 0; iteration < _maxIterations && written < maxWrites; iteration++)
        {
            if ((iteration & 7) == 0)
            {
                cancellation.ThrowIfCancellationRequested();
            }

            var split = splitSteps && !searched ? SplitStep(floor, costPerWrite, allowance, log) : 0;
            if (split > 0)
            {
                written += split;
                continue;
            }

            var best = FindBest(floor, maxWrites - written, allowance);
            searched = best.Kind != OpKind.None;
            if (searched)
            {
                log?.BeginOp(best.Ratio - costPerWrite);
                written += Apply(best, log);
                continue;
            }

            if (kicks >= KickAttempts || failures >= KickFailures || PredictedImbalance <= kickAbove)
            {
                break;
            }

            kicks++;
            var spent = TryKick(floor, costPerWrite, maxWrites - written, allowance, log);
            if (spent > 0)
            {
                written += spent;
                failures = 0;
            }
            else
            {
                failures++;
                if (spent < 0)
                {
                    break; // no kick candidate at all
                }

                if (failures >= KickFailures)
                {
                    // The rollback restored the placement in which nothing paid: searching it again would stop here.
                    break;
                }
            }
        }

        return written;
    }

    /// <summary>
    /// The cheap step of <see cref="Search"/>, tried before each candidate search: the splittable replicas of the
    /// prediction's peak device a, in descending order of how far one more replica lowers a (load / (c (c + 1))), each
    /// with the spare slot where its new replica ends coolest on the prediction (the slot's device without its
    /// occupant, and the occupant's other replicas after taking over its tokens); the first whose estimated new peak
    /// (that level, a's new level, the busiest other device) is lowest wins, the scan stopping once a replica reaches
    /// the busiest other device. It is scored exactly and applied when it pays its write; returns the writes (0: the
    /// full search runs). About a fifth of a search's work; it takes most of the re-replications that track drift.
    /// </summary>
    private int SplitStep(double floor, double costPerWrite, int allowance, OmniWriteLog? log)
    {
        if (_s > 64)
        {
            return 0; // the replicas already tried are kept in a 64-bit mask
        }

        var a = _order[0];
        var second = _d > 1 ? _dev[_order[1]] : 0;
        var bestX = -1;
        var bestTarget = -1;
        var bestPeak = _dev[a];
        var ready = false;
        var done = 0UL;
        while (true)
        {
            var x = -1;
            var xl = -1;
            var drop = 0.0;
            for (var li = 0; li < _s; li++)
            {
                var e = _row[(a * _s) + li];
                if (e >= 0 && (done & (1UL << li)) == 0 && _cnt[e] < ReplicaCap)
                {
                    var d = _load[e] / (_cnt[e] * (_cnt[e] + 1.0));
                    if (x < 0 || d > drop)
                    {
                        (x, xl, drop) = (e, li, d);
                    }
                }
            }

            if (x < 0)
            {
                break;
            }

            done |= 1UL << xl;
            var least = Math.Max(_dev[a] - drop, second);
            if (least >= bestPeak)
            {
                break; // the rest lower a less
            }

            if (!ready)
            {
                // Spare slots' base levels; their siblings (NaN until needed) are computed at most once per step.
                ready = true;
                BuildSpareSlots(allowance);
                SpareBases(0);
                Array.Fill(_spareSiblings, double.NaN, 0, _spareCount);
            }

            var split = _load[x] / (_cnt[x] + 1);
            var target = -1;
            var level = bestPeak;
            for (var t = 0; t < _spareCount; t++)
            {
                // Most slots fail on their occupant's siblings, once known (NaN, not yet computed, passes).
                var siblings = _spareSiblings[t];
                var baseLevel = _spareBase[t] + split;
                if (siblings >= level || baseLevel >= level)
                {
                    continue;
                }

                var j = _spare[t];
                var b = j / _s;
                if (b == a || _onDevice[(x * _d) + b] != 0)
                {
                    continue;
                }

                if (double.IsNaN(siblings))
                {
                    siblings = SiblingLevel(0, j, _row[j]);
                    _spareSiblings[t] = siblings;
                }

                var after = Math.Max(baseLevel, siblings);
                if (after < level)
                {
                    (level, target) = (after, j);
                    if (after <= least)
                    {
                        break; // no slot does better for x
                    }
                }
            }

            if (target < 0)
            {
                continue;
            }

            var peak = Math.Max(least, level);
            if (peak < bestPeak)
            {
                (bestPeak, bestX, bestTarget) = (peak, x, target);
            }

            if (peak <= second)
            {
                break; // nothing beats the busiest other device
            }
        }

        if (bestX < 0)
        {
            return 0;
        }

        var ratio = -ReplicateDelta(bestX, bestTarget, _row[bestTarget]);
        if (ratio <= floor)
        {
            return 0;
        }

        log?.BeginOp(ratio - costPerWrite);
        return Apply(new Op(OpKind.Replicate, -1, bestTarget, bestX, ratio), log);
    }

    /// <summary>
    /// One kick (see <see cref="Search"/>): the heaviest splittable replica on the prediction's peak device gets one
    /// more replica on the coolest device that can take it, either in a redundant or empty slot there, or in the slot
    /// of an occupant that is first relocated to a redundant or empty slot elsewhere. Returns the writes spent when the
    /// chain is kept, 0 when it was rolled back, -1 when there is no candidate.
    /// </summary>
    private int TryKick(double floor, double costPerWrite, int writesLeft, int allowance, OmniWriteLog? log)
    {
        if (writesLeft < 4)
        {
            return -1;
        }

        var a = _order[0];
        var x = -1;
        for (var li = 0; li < _s; li++)
        {
            var e = _row[(a * _s) + li];
            if (e >= 0 && _cnt[e] < ReplicaCap && (x < 0 || _share[e] > _share[x]))
            {
                x = e;
            }
        }

        if (x < 0)
        {
            return -1;
        }

        BuildSpareSlots(allowance);
        var split = _load[x] / (_cnt[x] + 1);
        var (target, relocate) = KickTarget(x, a, split);
        if (target < 0)
        {
            return -1;
        }

        Array.Copy(_row, _snapshot, _row.Length);
        var mark = log?.OpCount ?? 0;
        var delta = 0.0;
        var written = 0;
        if (relocate >= 0)
        {
            var y = _row[target];
            delta += ReplicateDelta(y, relocate, _row[relocate]);
            log?.BeginOp(0);
            written += Apply(new Op(OpKind.Replicate, -1, relocate, y, 0), log);
            delta += DropDelta(y, target);
            log?.BeginOp(0);
            written += Apply(new Op(OpKind.Drop, target, -1, y, 0), log);
        }

        delta += ReplicateDelta(x, target, _row[target]);
        log?.BeginOp(0);
        written += Apply(new Op(OpKind.Replicate, -1, target, x, 0), log);
        (_frozenA, _frozenB) = (target, relocate);
        try
        {
            return Repair(mark, delta, written, floor, costPerWrite, writesLeft, allowance, log);
        }
        finally
        {
            (_frozenA, _frozenB) = (-1, -1);
        }
    }

    /// <summary>After a kick: greedy steps (the kicked slots frozen) until the chain pays, else roll back.</summary>
    private int Repair(int mark, double delta, int written, double floor, double costPerWrite, int writesLeft, int allowance, OmniWriteLog? log)
    {
        for (var repair = 0; ; repair++)
        {
            if (-delta / written > floor)
            {
                log?.Merge(mark, (-delta / written) - costPerWrite);
                return written;
            }

            if (repair >= KickRepairs || written >= writesLeft)
            {
                break;
            }

            var best = FindBest(RepairFloor(repair, delta, written, floor), writesLeft - written, allowance);
            if (best.Kind == OpKind.None)
            {
                break;
            }

            delta -= best.Ratio * Writes(best.Kind);
            log?.BeginOp(0);
            written += Apply(best, log);
        }

        Restore(_snapshot);
        log?.Rollback(mark);
        return 0;
    }

    /// <summary>
    /// The floor of a kick's repair search: any gain (the slack) before the last repair, since a later repair may
    /// still make the chain pay. At the last repair only an operation that makes the chain pay can change the
    /// outcome: one that does not is rolled back with the rest, as when none is found. An operation of w writes and
    /// gain per write r pays when r &gt; (floor x (written + w) + delta) / w, which is lowest for a swap (w = 2) while the
    /// chain does not pay yet; the floor is that, less the slack. <see cref="FindBest"/> returns the best operation
    /// above its floor, so the one it returns is the same as with the lower floor whenever that one can pay.
    /// </summary>
    private double RepairFloor(int repair, double delta, int written, double floor) =>
        repair == KickRepairs - 1 ? Math.Max(_slack, (((floor * (written + 2)) + delta) / 2) - _slack) : _slack;

    /// <summary>
    /// The objective of the state with its tie-breaker and comm terms, as the operations' scores count them (the comm
    /// term up to a constant): what the two phases of <see cref="Search"/> must lower by their writes' cost.
    /// </summary>
    private double WholeObjective()
    {
        var squares = 0.0;
        for (var k = 0; k < _k1; k++)
        {
            for (var d = 0; d < _d; d++)
            {
                squares += _w[k] * Sq(_dev[(k * _d) + d]);
            }
        }

        var comm = 0.0;
        if (_commWeight > 0)
        {
            for (var x = 0; x < _e; x++)
            {
                var nodeCnt = _nodeCnt.AsSpan(x * _nodes, _nodes);
                for (var n = 0; n < nodeCnt.Length; n++)
                {
                    if (nodeCnt[n] == 0)
                    {
                        comm += NodeCommCost(x, n);
                    }
                }
            }
        }

        return _objective + (_bestEp > 0 ? TieWeight * squares / (_bestEp * _d) : 0) + (_commWeight * comm);
    }

    /// <summary>
    /// Where a kick puts x's new replica: on the coolest device (prediction) that does not hold x, since the repair
    /// sheds that device's other load. On it, the spare slot (redundant or empty) whose loss heats x's competitors
    /// least, or else the slot of its lightest single-replica occupant, which first moves to the spare slot
    /// elsewhere that ends coolest.
    /// </summary>
    private (int Target, int Relocate) KickTarget(int x, int a, double split)
    {
        for (var r = 0; r < Math.Min(ReceiverCount, _d - 1); r++)
        {
            var b = _order[_d - 1 - r];
            if (b == a || _onDevice[(x * _d) + b] != 0)
            {
                continue;
            }

            var target = -1;
            var best = double.PositiveInfinity;
            var lightest = -1;
            for (var lj = 0; lj < _s; lj++)
            {
                var j = (b * _s) + lj;
                var f = _row[j];
                if (f < 0 ? _used < _spareAllowance : _cnt[f] >= 2)
                {
                    var collateral = f < 0 ? 0 : LevelAfterReplicate(0, j, f, split) - (_dev[b] - _share[f] + split);
                    if (collateral < best)
                    {
                        (best, target) = (collateral, j);
                    }
                }
                else if (f >= 0 && (lightest < 0 || _share[f] < _share[_row[lightest]]))
                {
                    lightest = j;
                }
            }

            if (target >= 0)
            {
                return (target, -1);
            }

            if (lightest < 0)
            {
                continue;
            }

            var y = _row[lightest];
            var home = -1;
            var homeLevel = double.PositiveInfinity;
            for (var i = 0; i < _spareCount; i++)
            {
                var h = _spare[i];
                var c = h / _s;
                if (c == b || _row[h] == y || _onDevice[(y * _d) + c] != 0)
                {
                    continue;
                }

                var after = LevelAfterReplicate(0, h, _row[h], _share[y]);
                if (after < homeLevel)
                {
                    (homeLevel, home) = (after, h);
                }
            }

            if (home >= 0)
            {
                return (lightest, home);
            }
        }

        return (-1, -1);
    }

    private enum OpKind
    {
        None,
        Swap,
        Replicate,
        Drop,
    }

    private readonly record struct Op(OpKind Kind, int SlotA, int SlotB, int Expert, double Ratio);

    private static int Writes(OpKind kind) => kind == OpKind.Swap ? 2 : 1;

    private int WorstScenario()
    {
        var worst = -1;
        for (var k = 1; k < _k1; k++)
        {
            if (_w[k] > 0 && (worst < 0 || _w[k] * _peak[k] > _w[worst] * _peak[worst]))
            {
                worst = k;
            }
        }

        return worst;
    }

    /// <summary>
    /// The best operation (highest gain per slot write above <paramref name="floor"/>) that takes load off a source
    /// device: the prediction's peak device, and the peak device of the scenario that weighs most in the objective.
    /// Where both are one device, the second source (the same replicas screened on the other scenario) is added only
    /// when the first finds nothing: on the steady calls of eace477 (whole-objective searches, repairs left out) it
    /// gave the best operation only 2 of 25 / 5 of 32 / 5 of 58 times there (drifting / switching / stable), against
    /// 93 of 164 / 39 of 87 / 6 of 24 where the peaks were two devices; where the prediction is flat, only it sees
    /// the scenarios' peaks.
    /// Candidates are screened on the source's scenario k: swaps only with the coolest devices, keeping per replica the
    /// two partners that level the source and the partner's device best; re-replications into the spare slot that
    /// ends coolest; drops of redundant replicas. Each candidate (and each replica's whole swap screen) has an upper
    /// bound on its gain; they are taken in descending order of bound and scored exactly until no bound can beat the
    /// best found (branch and bound). The result is the candidate of the highest ratio, ties to the one first in the
    /// order of the search's earlier form (per source, per replica: swap partners, re-replication, drop).
    /// </summary>
    private Op FindBest(double floor, int writesLeft, int allowance)
    {
        BuildSpareSlots(allowance);
        (_firstLevels, _sortedStage) = (-1, 0);
        _candidates = 0;
        _floor = floor;

        var worst = WorstScenario();
        if (_w[0] > 0)
        {
            AddCandidates(0, _order[0], 0, writesLeft);
        }

        var secondIfNone = worst > 0 && _w[0] > 0 && _order[worst * _d] == _order[0];
        if (worst > 0 && !secondIfNone)
        {
            AddCandidates(1, _order[worst * _d], worst, writesLeft);
        }

        var best = new Op(OpKind.None, -1, -1, -1, floor);
        var bestIndex = -1;
        while (true)
        {
            // The first candidate of the highest bound; those taken have bound negative infinity (any other bound is
            // finite, or positive infinity for the percentile objective).
            var pick = -1;
            var top = double.NegativeInfinity;
            for (var c = 0; c < _candidates; c++)
            {
                if (_cBound[c] > top)
                {
                    (pick, top) = (c, _cBound[c]);
                }
            }

            if (pick < 0 || (!_percentile && top <= best.Ratio - _slack))
            {
                if (secondIfNone && best.Kind == OpKind.None)
                {
                    secondIfNone = false;
                    AddCandidates(1, _order[worst * _d], worst, writesLeft);
                    continue;
                }

                break;
            }

            var kind = _cKind[pick];
            _cBound[pick] = double.NegativeInfinity;
            var x = _cX[pick];
            var index = _cIndex[pick];
            double ratio;
            Op op;
            switch (kind)
            {
                case Candidate.Replicate:
                    ratio = -ReplicateDelta(x, _cSlot[pick], _row[_cSlot[pick]]);
                    op = new Op(OpKind.Replicate, -1, _cSlot[pick], x, ratio);
                    break;
                case Candidate.Drop:
                    ratio = -DropDelta(x, _cSlot[pick]);
                    op = new Op(OpKind.Drop, _cSlot[pick], -1, x, ratio);
                    break;
                case Candidate.Swap:
                    var i = _cSlot[pick];
                    var partner = _cPartner[pick];
                    ratio = -SwapDelta(i / _s, x, partner / _s, _row[partner]) / 2;
                    op = new Op(OpKind.Swap, i, partner, x, ratio);
                    break;
                default: // Candidate.Screen: its swap partners join the table with their own bounds
                    ScreenSwaps(_cSource[pick], _cSlot[pick], x, index);
                    continue;
            }

            if (ratio > best.Ratio || (ratio == best.Ratio && index < bestIndex))
            {
                (best, bestIndex) = (op, index);
            }
        }

        return best;
    }

    /// <summary>A candidate of <see cref="FindBest"/>: an operation to score, or a replica's swap screen to run.</summary>
    private enum Candidate
    {
        None,
        Replicate,
        Drop,
        Screen,
        Swap,
    }

    private void AddCandidate(Candidate kind, double bound, int source, int x, int slot, int partner, int index)
    {
        if (!_percentile && bound <= _floor - _slack)
        {
            return; // cannot pay its writes
        }

        var c = _candidates++;
        _cKind[c] = kind;
        _cBound[c] = _percentile ? double.PositiveInfinity : bound;
        _cSource[c] = source;
        _cX[c] = x;
        _cSlot[c] = slot;
        _cPartner[c] = partner;
        _cIndex[c] = index;
    }

    /// <summary>
    /// The candidates of source <paramref name="source"/> (0 or 1): device <paramref name="a"/>, the peak of scenario
    /// <paramref name="k"/>. Re-replications get their spare slot here (the one that ends coolest on scenario k); swap
    /// screens are run only when taken (<see cref="ScreenSwaps"/>).
    /// </summary>
    private void AddCandidates(int source, int a, int k, int writesLeft)
    {
        var dev = _dev.AsSpan(k * _d, _d);
        _srcDevice[source] = a;
        _srcScenario[source] = k;
        var receivers = writesLeft >= 2 ? ReceiverDevices(source, a, k) : 0;
        _srcReceivers[source] = receivers;
        _srcSlotsReady[source] = false;
        var boundBase = 0.0;
        var commUnit = _commWeight > 0 ? _commWeight * ((1.0 / _nodes) + (_affinity ? 1 : 0)) / _d : 0;
        if (receivers > 0 && !_percentile)
        {
            // One bound for every swap of a replica: a and all receivers marked at once, the warmest receiver's
            // weight, the layer's heaviest expert's load as the partner's (the comm term is small, so a tighter bound
            // from the receivers' occupants saves fewer screens than reading them costs); where a is the peak, it falls
            // at most to its load without x.
            _stamp++;
            _mark[a] = _stamp;
            var warmest = 0.0;
            var rb = source * ReceiverCount;
            for (var r = 0; r < receivers; r++)
            {
                var b = _recvDevice[rb + r];
                _mark[b] = _stamp;
                warmest = Math.Max(warmest, _devW[b]);
            }

            boundBase = GainBound(_devW[a] + warmest, 0);
            for (var kk = 0; kk < _k1; kk++)
            {
                _restLevel[kk] = _order[kk * _d] == a ? Math.Max(0, MaxUnmarked(kk)) : double.NaN;
            }
        }

        var levelsReady = false;
        for (var li = 0; li < _s; li++)
        {
            var i = (a * _s) + li;
            var x = _row[i];
            if (x < 0 || i == _frozenA || i == _frozenB)
            {
                continue;
            }

            // The tie-break key: the order in which the search's earlier form met its candidates (per source, per
            // replica: swap partners +0 and +1, re-replication +2, drop +3).
            var index = ((source * _s) + li) * 4;
            if (receivers > 0)
            {
                var bound = _percentile ? 0 : (SwapBoundOf(a, x, boundBase) + (commUnit * 2 * (_load[x] + _heaviest))) / 2;
                AddCandidate(Candidate.Screen, bound, source, x, i, -1, index);
            }

            if (_cnt[x] < ReplicaCap)
            {
                // Spare slot levels (scenario k) without x: the slot's device minus its occupant, and the occupant's
                // other replicas after taking over its tokens. Computed once per source device.
                if (!levelsReady)
                {
                    levelsReady = true;
                    if (source == 0)
                    {
                        _firstLevels = k;
                    }

                    // The least split among a's replicas: slots that cannot end below a even with it are left out of
                    // the scans.
                    _liveSplit = double.PositiveInfinity;
                    for (var lj = li; lj < _s; lj++)
                    {
                        var e = _row[(a * _s) + lj];
                        if (e >= 0 && _cnt[e] < ReplicaCap)
                        {
                            _liveSplit = Math.Min(_liveSplit, _load[(k * _e) + e] / (_cnt[e] + 1));
                        }
                    }

                    LiveLevels(k, dev[a]);
                }

                var target = SpareTarget(a, x, k, dev[a], source + 1);
                if (target >= 0)
                {
                    var bound = _percentile ? 0 : ReplicateGainBound(a, x, target, _row[target]);
                    AddCandidate(Candidate.Replicate, bound, source, x, target, -1, index + 2);
                }
            }

            if (_cnt[x] >= 2)
            {
                var bound = _percentile ? 0 : DropGainBound(a, x);
                AddCandidate(Candidate.Drop, bound, source, x, i, -1, index + 3);
            }
        }
    }

    /// <summary>
    /// The spare slot (scenario k) where a new replica of x ends coolest, below <paramref name="limit"/> (ties: the
    /// lower base level), as a scan of the slots sorted by base level finds it; only when two slots tie on both does
    /// the sorted order itself decide (<see cref="SortSpares"/>). -1 when none.
    /// </summary>
    private int SpareTarget(int a, int x, int k, double limit, int stage)
    {
        var split = _load[(k * _e) + x] / (_cnt[x] + 1);
        var target = -1;
        var level = limit;
        var targetBase = double.PositiveInfinity;
        var tied = false;
        for (var u = 0; u < _liveCount; u++)
        {
            var t = _live[u];
            var spareBase = _spareBase[t];
            var after = Math.Max(spareBase + split, _spareSiblings[t]);
            if (after > level || (after == level && (target < 0 || spareBase > targetBase)))
            {
                continue;
            }

            var j = _spare[t];
            var b = j / _s;
            if (b == a || _row[j] == x || _onDevice[(x * _d) + b] != 0)
            {
                continue;
            }

            if (after == level && spareBase == targetBase)
            {
                tied = true;
                continue;
            }

            (level, target, targetBase, tied) = (after, j, spareBase, false);
        }

        if (!tied)
        {
            return target;
        }

        SortSpares(stage, k);
        LiveSpares(limit);
        target = -1;
        level = limit;
        for (var t = 0; t < _spareCount; t++)
        {
            if (_spareBase[t] + split >= level)
            {
                break;
            }

            var after = Math.Max(_spareBase[t] + split, _spareSiblings[t]);
            if (after >= level)
            {
                continue;
            }

            var j = _spare[t];
            var b = j / _s;
            if (b == a || _row[j] == x || _onDevice[(x * _d) + b] != 0)
            {
                continue;
            }

            level = after;
            target = j;
        }

        return target;
    }

    /// <summary>
    /// The spare slots (indices into the levels) that may end below <paramref name="limit"/> with a new replica of
    /// split <see cref="_liveSplit"/> or more: the others can never be a re-replication's target from this source.
    /// </summary>
    private void LiveSpares(double limit)
    {
        _liveCount = 0;
        for (var t = 0; t < _spareCount; t++)
        {
            if (_spareBase[t] + _liveSplit < limit && _spareSiblings[t] < limit)
            {
                _live[_liveCount++] = t;
            }
        }
    }

    /// <summary>
    /// The swap screen of replica x (slot i) of a source device: the two partners over the coolest devices that level
    /// a and the partner's device best on the source's scenario; each becomes a candidate with its own bound.
    /// </summary>
    private void ScreenSwaps(int source, int i, int x, int index)
    {
        var a = _srcDevice[source];
        var k = _srcScenario[source];
        var receivers = _srcReceivers[source];
        var rb = source * ReceiverCount;
        if (!_srcSlotsReady[source])
        {
            ReceiverSlots(source, a, k, receivers);
            _srcSlotsReady[source] = true;
        }

        var load = _dev[(k * _d) + a];
        var ux = _share[(k * _e) + x];
        int first = -1, second = -1;
        double firstTop = double.PositiveInfinity, secondTop = double.PositiveInfinity;
        var held = _onDevice.AsSpan(x * _d, _d);
        for (var r = 0; r < receivers; r++)
        {
            if (held[_recvDevice[rb + r]] != 0)
            {
                continue;
            }

            var gap = _recvGap[rb + r];
            var level = _recvLoad[rb + r];
            if ((load + level) * 0.5 * (1 - 1e-12) >= secondTop)
            {
                break; // no swap with this or a warmer device levels a below the second partner found
            }

            for (var t = _recvStart[rb + source + r]; t < _recvStart[rb + source + r + 1]; t++)
            {
                var shift = ux - _recvShare[t];
                if (shift <= 0 || shift >= gap)
                {
                    continue;
                }

                var top = Math.Max(load - shift, level + shift);
                if (top < firstTop)
                {
                    (second, secondTop) = (first, firstTop);
                    (first, firstTop) = (_recvSlot[t], top);
                }
                else if (top < secondTop)
                {
                    (second, secondTop) = (_recvSlot[t], top);
                }
            }
        }

        if (first >= 0)
        {
            var bound = _percentile ? 0 : SwapGainBound(a, x, first / _s, _row[first]) / 2;
            AddCandidate(Candidate.Swap, bound, source, x, i, first, index);
        }

        if (second >= 0)
        {
            var bound = _percentile ? 0 : SwapGainBound(a, x, second / _s, _row[second]) / 2;
            AddCandidate(Candidate.Swap, bound, source, x, i, second, index + 1);
        }
    }

    /// <summary>The swap screen's bound for x on a: <paramref name="boundBase"/>, less where a cannot fall below its load without x.</summary>
    private double SwapBoundOf(int a, int x, double boundBase)
    {
        var bound = boundBase;
        for (var k = 0; k < _k1; k++)
        {
            var rest = _restLevel[k];
            if (!double.IsNaN(rest))
            {
                var without = _dev[(k * _d) + a] - _share[(k * _e) + x];
                if (without > rest)
                {
                    bound -= _w[k] * (without - rest);
                }
            }
        }

        return bound;
    }

    /// <summary>
    /// The swap partners of source <paramref name="source"/>, device <paramref name="a"/>, on scenario
    /// <paramref name="k"/>: the coolest devices below a (at most <see cref="ReceiverCount"/>), each with its load and
    /// its gap to a. Returns the number of devices; their slots come with <see cref="ReceiverSlots"/>.
    /// </summary>
    private int ReceiverDevices(int source, int a, int k)
    {
        var dev = _dev.AsSpan(k * _d, _d);
        var order = _order.AsSpan(k * _d, _d);
        var rb = source * ReceiverCount;
        var count = 0;
        for (var r = 0; r < Math.Min(ReceiverCount, _d - 1); r++)
        {
            var b = order[_d - 1 - r];
            var gap = dev[a] - dev[b];
            if (gap <= 0)
            {
                break; // the order is by load: the remaining devices are no cooler than a
            }

            _recvDevice[rb + count] = b;
            _recvGap[rb + count] = gap;
            _recvLoad[rb + count] = dev[b];
            count++;
        }

        return count;
    }

    /// <summary>
    /// Per receiver of the source, the slots whose occupant (or emptiness) may trade places with a replica on a, with
    /// the occupant's share on scenario k.
    /// </summary>
    private void ReceiverSlots(int source, int a, int k, int receivers)
    {
        var share = _share.AsSpan(k * _e, _e);
        var rb = source * ReceiverCount;
        var sb = rb + source;
        var n = rb * _s;
        for (var r = 0; r < receivers; r++)
        {
            var b = _recvDevice[rb + r];
            _recvStart[sb + r] = n;
            for (var lj = 0; lj < _s; lj++)
            {
                var j = (b * _s) + lj;
                var y = _row[j];
                if ((y >= 0 && _onDevice[(y * _d) + a] != 0) || j == _frozenA || j == _frozenB)
                {
                    continue;
                }

                _recvSlot[n] = j;
                _recvShare[n] = y >= 0 ? share[y] : 0;
                n++;
            }
        }

        _recvStart[sb + receivers] = n;
    }

    /// <summary>
    /// Puts the spare slots in the order the search's earlier form scanned them for source <paramref name="stage"/>
    /// (1 or 2) of <see cref="FindBest"/>: sorted (unstably) by the first source's base levels when that source
    /// computed them, then by scenario <paramref name="k"/>'s; refills the levels in that order. Needed only to break
    /// exact ties the same way.
    /// </summary>
    private void SortSpares(int stage, int k)
    {
        if (_sortedStage == stage)
        {
            return;
        }

        if (stage == 2 && _sortedStage == 0 && _firstLevels >= 0)
        {
            SpareLevels(_firstLevels);
            Array.Sort(_spareBase, _spare, 0, _spareCount);
            _spareValid = false;
        }

        SpareLevels(k);
        Array.Sort(_spareBase, _spare, 0, _spareCount);
        SpareLevels(k);
        _sortedStage = stage;
        _spareValid = false; // reordered: a build in slot order is needed again
    }

    /// <summary>
    /// Fills, per spare slot, <see cref="LevelAfterReplicate"/>'s two parts for scenario k: the slot's device without
    /// its occupant, and the occupant's other replicas after taking over its tokens.
    /// </summary>
    private void SpareLevels(int k)
    {
        SpareBases(k);
        for (var t = 0; t < _spareCount; t++)
        {
            var j = _spare[t];
            _spareSiblings[t] = SiblingLevel(k, j, _row[j]);
        }
    }

    /// <summary>Each spare slot's device on scenario k without the slot's occupant (<c>_spareBase</c>).</summary>
    private void SpareBases(int k)
    {
        for (var t = 0; t < _spareCount; t++)
        {
            var j = _spare[t];
            var f = _row[j];
            _spareBase[t] = _dev[(k * _d) + (j / _s)] - (f >= 0 ? _share[(k * _e) + f] : 0);
        }
    }

    /// <summary>
    /// Scenario-k load of the hottest device among those of f's other replicas once they take over f's tokens in slot
    /// j (negative infinity when j is empty, f &lt; 0).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private double SiblingLevel(int k, int j, int f)
    {
        var siblings = double.NegativeInfinity;
        if (f >= 0)
        {
            var raise = _share[(k * _e) + f] / (_cnt[f] - 1);
            for (var slot = _repHead[f]; slot >= 0; slot = _repNext[slot])
            {
                if (slot != j)
                {
                    siblings = Math.Max(siblings, _dev[(k * _d) + (slot / _s)] + raise);
                }
            }
        }

        return siblings;
    }

    /// <summary>
    /// <see cref="SpareLevels"/> and <see cref="LiveSpares"/> in one pass: the occupant's siblings are only computed
    /// for slots whose base level lets them end below <paramref name="limit"/> (the others' are left stale, and only
    /// the live slots are read until the next fill).
    /// </summary>
    private void LiveLevels(int k, double limit)
    {
        _liveCount = 0;
        for (var t = 0; t < _spareCount; t++)
        {
            var j = _spare[t];
            var f = _row[j];
            var spareBase = _dev[(k * _d) + (j / _s)] - (f >= 0 ? _share[(k * _e) + f] : 0);
            _spareBase[t] = spareBase;
            if (spareBase + _liveSplit >= limit)
            {
                continue;
            }

            var siblings = SiblingLevel(k, j, f);
            _spareSiblings[t] = siblings;
            // Without a branch: about one slot in six is live, in no order the branch predictor can learn.
            _live[_liveCount] = t;
            _liveCount += siblings < limit ? 1 : 0;
        }
    }

    /// <summary>
    /// Scenario-k load of the hottest device a new replica (of per-replica load <paramref name="split"/>) in slot j
    /// leaves behind: j's device, and the devices of f's other replicas, which take over f's tokens.
    /// </summary>
    private double LevelAfterReplicate(int k, int j, int f, double split)
    {
        var b = j / _s;
        if (f < 0)
        {
            return _dev[(k * _d) + b] + split;
        }

        return Math.Max(_dev[(k * _d) + b] - _share[(k * _e) + f] + split, SiblingLevel(k, j, f));
    }

    /// <summary>Removes <paramref name="slot"/> from expert x's replica list.</summary>
    private void UnlinkReplica(int x, int slot)
    {
        if (_repHead[x] == slot)
        {
            _repHead[x] = _repNext[slot];
            return;
        }

        for (var p = _repHead[x]; p >= 0; p = _repNext[p])
        {
            if (_repNext[p] == slot)
            {
                _repNext[p] = _repNext[slot];
                return;
            }
        }
    }

    /// <summary>Adds <paramref name="slot"/> to expert x's replica list, which stays in ascending slot order.</summary>
    private void LinkReplica(int x, int slot)
    {
        if (_repHead[x] < 0 || _repHead[x] > slot)
        {
            _repNext[slot] = _repHead[x];
            _repHead[x] = slot;
            return;
        }

        var p = _repHead[x];
        while (_repNext[p] >= 0 && _repNext[p] < slot)
        {
            p = _repNext[p];
        }

        _repNext[slot] = _repNext[p];
        _repNext[p] = slot;
    }

    /// <summary>
    /// Each expert's replica slots as a list in ascending slot order, and the slot sets of <see cref="BuildSpareSlots"/>
    /// (then kept up to date by <see cref="Write"/>).
    /// </summary>
    private void BuildReplicaLists()
    {
        Array.Fill(_repHead, -1);
        Array.Clear(_redundantBits);
        Array.Clear(_emptyBits);
        for (var slot = _row.Length - 1; slot >= 0; slot--)
        {
            var x = _row[slot];
            if (x >= 0)
            {
                _repNext[slot] = _repHead[x];
                _repHead[x] = slot;
                if (_cnt[x] >= 2)
                {
                    _redundantBits[slot >> 6] |= 1UL << slot;
                }
            }
            else
            {
                _emptyBits[slot >> 6] |= 1UL << slot;
            }
        }
    }

    /// <summary>Keeps the spare-slot sets of slot <paramref name="slot"/> up to date when <see cref="Write"/> changes it.</summary>
    private void UpdateSpareBits(int slot, int old, int expert)
    {
        var bit = 1UL << slot;
        _redundantBits[slot >> 6] &= ~bit;
        _emptyBits[slot >> 6] &= ~bit;
        if (old >= 0 && _cnt[old] == 1)
        {
            var other = _repHead[old]; // its last replica is no longer redundant
            _redundantBits[other >> 6] &= ~(1UL << other);
        }

        if (expert < 0)
        {
            _emptyBits[slot >> 6] |= bit;
            return;
        }

        if (_cnt[expert] >= 2)
        {
            // Every replica of the expert (the new one included) is redundant now.
            for (var s = _repHead[expert]; s >= 0; s = _repNext[s])
            {
                _redundantBits[s >> 6] |= 1UL << s;
            }
        }
    }

    /// <summary>Slots a new replica may take: those of redundant replicas, and empty ones while the allowance lasts.</summary>
    private void BuildSpareSlots(int allowance)
    {
        if (_spareValid && allowance == _spareAllowance && _frozenA == _spareFrozenA && _frozenB == _spareFrozenB)
        {
            return; // no write, reload or reordering since the last build
        }

        (_spareValid, _spareFrozenA, _spareFrozenB) = (true, _frozenA, _frozenB);
        _spareAllowance = allowance;
        _spareCount = 0;
        var empties = _used < allowance;
        for (var w = 0; w < _redundantBits.Length; w++)
        {
            var bits = _redundantBits[w] | (empties ? _emptyBits[w] : 0);
            while (bits != 0)
            {
                var slot = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                if (slot != _frozenA && slot != _frozenB)
                {
                    _spare[_spareCount++] = slot;
                }
            }
        }
    }
}
