// eplb: DeepSeek's EPLB (Core's faithful port), relabelled to keep unchanged experts in their slots
//
// The idea: EPLB decides replica counts greedily (next replica to the expert with the largest per-replica load),
// then packs replicas onto devices by longest-processing-time with equal slot counts; hierarchical when the expert
// groups divide evenly over the nodes (groups onto nodes first), global otherwise. It fits the summed load of the
// last `window` steps and ignores the placement in force, so it rewrites almost every slot at every rebalance.
// With `keep-slots`, each node's devices are matched to the new device contents by a minimum-cost assignment and
// experts a device keeps stay in their slots (MinimalMovement): the same device loads, far fewer copies. That is the
// fair movement-aware baseline to compare OmniPlacement with (deepseek-ai/EPLB issue #25 asks for exactly this).
//
// Knobs:
//   window      steps of history summed (default: every step held)
//   groups      expert groups for the hierarchical mode (default: the model's)
//   keep-slots  relabel devices and slots against the placement in force (true here; false = EPLB's raw output)
//
// When to use: as the baseline; or where EPLB's known behaviour is wanted with fewer weight copies.
// EPLB may put two replicas of one expert on one device; the decision says so and the host accepts it.
//
// @option keep-slots = true
#load "lib/policy-options.lib.csx"

return new OptionsOverlayPolicy(BuiltInPolicies.TryCreate("eplb")!, Options);
