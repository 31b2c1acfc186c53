// omniplacement-static: one offline OmniPlacement pattern fitted on a long trace, then kept
//
// The idea: fit once, from scratch, on everything the history holds (the window mean as the load, no move limits,
// no trigger), and keep that pattern at every later call: OmniPlacement's static pattern tool, as the
// omni_pattern_tool pipeline produces it, but with the joint replica/placement search of omniplacement.csx instead
// of its heap + LPT. The robust part looks at the trace's own chunks (not mirrored forward): a pattern that keeps
// every part of the trace balanced, not only its mean. Unchanged experts still keep their slots (MinimalMovement).
//
// Knobs: as omniplacement.csx; the ones that matter here are scenarios and robust-weight (how much the pattern
// trades mean balance for balance in every chunk), split-above and redundant-budget (how many spare slots get a
// replica), comm-weight and group-affinity.
//
// When to use: a stable workload, an engine that cannot move experts while serving, or a start-up pattern (replay a
// recorded trace, export the placement, load it at start).
//
// @option name = omniplacement-static
// @option mode = static
// @option predictor = mean
// @option scenarios = 4
// @option robust-weight = 0.1
// @option forecast-scenarios = false
#load "lib/omniplacement.lib.csx"

return new OmniPlacementPolicy(Options);
