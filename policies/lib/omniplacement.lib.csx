// OmniPlacement: the algorithm behind policies/omniplacement*.csx (see those scripts for the idea and the knobs).
// Scripts load this file (#load "lib/omniplacement.lib.csx"); it loads the parts in lib/omniplacement/, which hold
// only using-directives and type declarations, so they compile both as one script library and as ordinary C# (the
// test projects compile lib/omniplacement/*.csx directly, without this file).
//
// Signals (one pass over the window): the predicted per-step load of every (layer, expert) (bias-corrected EMA, EMA
// plus damped trend, or the mean) and K chunk means of the window, optionally mirrored forward around the prediction.
// Per layer it minimises
//   J = w0 * peak(prediction) + sum_k wk * peak(scenario k)       (objective = peak-sum)
//   J = w0 * peak(prediction) + (1 - w0) * quantile_q(peaks)      (objective = percentile)
// plus a small cross-node dispatch term and a tie-breaker (per-scenario sum of squares) that lets the search leave a
// plateau. Replica counts and device assignment are optimised together: a greedy start that picks the replica total
// by packing, then a local search (swaps and moves between a peak device and cool ones, re-replication, drops, and
// kicks: one more replica of the busiest expert plus the swaps that make room, kept only when the chain pays). Each
// step first tries a cheap split (one more replica of an expert on the prediction's peak device, chosen on the
// prediction alone, applied when its exact gain pays; not right after a candidate search applied an operation); the
// full candidate search runs only when that fails. With scenarios (peak-sum), the search runs first on the
// prediction alone, then on the whole objective from there, without split steps and with kicks only in layers still
// above 1.1 predicted imbalance; the two phases are kept when, on the whole objective, they pay for the slots they
// change, and a state no candidate search improves (tested up to 1.1) gets only the second phase.
// In adaptive mode the search starts from the placement in force; every slot write must buy a
// predicted gain worth its bytes, a per-rebalance move budget is shared over layers by gain per write, a layer is
// only searched while its predicted imbalance is above a trigger (with hysteresis), and a layer far from balance
// also tries an anchored rebuild.
//
// The parts:
//   settings.lib.csx        the modes, OmniPlacementSettings (the knobs, parsed from the options) and the report
//   policy.lib.csx          OmniPlacementPolicy (what a script returns) and OmniDiagnostics
//   signals.lib.csx         OmniLoadSignals: the prediction and the chunk scenarios, from one pass over the window
//   planner.lib.csx         OmniRebalancePlanner: triggers, per-layer searches, the shared move budget; OmniWriteLog
//   solver.lib.csx          OmniLayerSolver's state: loading a layer, starting from a row, measuring a row
//   solver-start.lib.csx    the greedy start (replica total by packing) and the anchored rebuild
//   solver-search.lib.csx   the local search: operations, kicks and their repairs, candidates, swap screens, spare slots
//   solver-scoring.lib.csx  gain bounds, exact scoring of an operation, applying writes, device orders, KeepSlots
#load "omniplacement/settings.lib.csx"
#load "omniplacement/policy.lib.csx"
#load "omniplacement/signals.lib.csx"
#load "omniplacement/planner.lib.csx"
#load "omniplacement/solver.lib.csx"
#load "omniplacement/solver-start.lib.csx"
#load "omniplacement/solver-search.lib.csx"
#load "omniplacement/solver-scoring.lib.csx"
