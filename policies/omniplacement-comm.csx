// omniplacement-comm: OmniPlacement with the communication domain emphasised (multi-node deployments)
//
// The idea: the adaptive method, with the cross-node dispatch term weighted up and group affinity on. Tokens come
// from every node; a token whose expert has a replica on its own node stays there. So hot experts get replicas on
// several nodes, and each expert group's first replicas live on one home node (groups are spread over nodes by
// load, as EPLB's hierarchical mode does), which keeps co-activated experts of a group-limited router together.
// The balance objective still dominates: the comm term only decides among placements of nearly equal balance.
//
// Knobs: comm-weight (tokens crossing a node, per device, against the busiest device's tokens), group-affinity;
// the rest as omniplacement.csx. The report (LastReport) gives the cross-node share before and after.
//
// When to use: expert parallelism over several nodes with a slower inter-node fabric (InfiniBand / RoCE between
// NVLink islands), with group-limited routing such as DeepSeek-V3's.
//
// @option name = omniplacement-comm
// @option comm-weight = 0.5
// @option group-affinity = true
#load "lib/omniplacement.lib.csx"

return new OmniPlacementPolicy(Options);
