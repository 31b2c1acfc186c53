using System.Diagnostics;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>
/// Calls the current policy version safely: on a worker thread with a time limit and a cancellation token that
/// fires at the limit; an exception, a timeout, a cancelled call or an invalid placement keeps the placement in
/// force, is counted per reason and logged. Every returned placement passes <see cref="PlacementValidator"/>
/// (shape, ids, every expert placed, no co-located replicas unless the decision allows them) before it is used.
/// A call that ignores its cancellation runs on (a thread cannot be aborted); its version then answers
/// <see cref="PolicyFailureReason.Busy"/> until it returns, and cannot unload before.
/// </summary>
internal sealed class SafePolicyInvoker
{
    private readonly PolicySlot _slot;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;
    private readonly long[] _failures = new long[Enum.GetValues<PolicyFailureReason>().Length];
    private long _calls;
    private long _applied;
    private long _kept;

    public SafePolicyInvoker(PolicySlot slot, TimeSpan timeout, ILogger logger)
    {
        _slot = slot;
        _timeout = timeout;
        _logger = logger;
    }

    public TimeSpan Timeout => _timeout;

    public PolicyInvocationStats Stats => new(
        Interlocked.Read(ref _calls),
        Interlocked.Read(ref _applied),
        Interlocked.Read(ref _kept),
        Enum.GetValues<PolicyFailureReason>().ToDictionary(r => r, r => Interlocked.Read(ref _failures[(int)r])));

    /// <summary>Calls the policy and waits (blocking) for its answer or the time limit.</summary>
    public PolicyOutcome Invoke(PolicyContext context)
    {
        var (call, early) = Begin(context);
        if (call is null)
        {
            return early!;
        }

        try
        {
            return call.Completion.Wait((int)_timeout.TotalMilliseconds, context.Cancellation)
                ? End(call)
                : TimedOut(call);
        }
        catch (OperationCanceledException)
        {
            return CallerCancelled(call);
        }
    }

    /// <summary>Calls the policy and awaits its answer or the time limit.</summary>
    public async Task<PolicyOutcome> InvokeAsync(PolicyContext context)
    {
        var (call, early) = Begin(context);
        if (call is null)
        {
            return early!;
        }

        try
        {
            await call.Completion.WaitAsync(_timeout, context.Cancellation).ConfigureAwait(false);
            return End(call);
        }
        catch (TimeoutException)
        {
            return TimedOut(call);
        }
        catch (OperationCanceledException)
        {
            return CallerCancelled(call);
        }
    }

    private (PolicyCall? Call, PolicyOutcome? Early) Begin(PolicyContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Interlocked.Increment(ref _calls);
        var clock = Stopwatch.StartNew();
        var lease = _slot.Acquire();
        var version = lease.Version;
        if (!version.TryEnterCall())
        {
            lease.Dispose();
            return (null, Fail(context, version, PolicyFailureReason.Busy, "an earlier call of this version is still running past its time limit", clock));
        }

        var call = new PolicyCall(lease, context, clock);
        ThreadPool.UnsafeQueueUserWorkItem(static c => c.Run(), call, preferLocal: false);
        return (call, null);
    }

    private PolicyOutcome End(PolicyCall call)
    {
        var (version, context, clock) = (call.Version, call.Context, call.Clock);
        var result = call.Completion.Result;
        if (result.Cancelled)
        {
            return Fail(context, version, PolicyFailureReason.Cancelled, "the policy stopped on cancellation", clock);
        }

        if (result.Error is not null)
        {
            return Fail(context, version, PolicyFailureReason.Exception, result.Error, clock);
        }

        var decision = result.Decision!;
        if (decision.Placement is not { } placement)
        {
            Interlocked.Increment(ref _kept);
            return new PolicyOutcome(PolicyOutcomeKind.Kept, context.Current, decision.Reason, null, version.Name, version.Number, clock.Elapsed);
        }

        try
        {
            var subject = $"policy '{version.Name}' placement";
            PlacementValidator.EnsureShape(placement, context.Topology, context.Layers, context.LogicalExperts, subject);
            PlacementValidator.EnsureValid(placement, subject, decision.AllowsColocatedReplicas);
        }
        catch (InputException ex)
        {
            return Fail(context, version, PolicyFailureReason.InvalidPlacement, ex.Message, clock);
        }

        Interlocked.Increment(ref _applied);
        return new PolicyOutcome(PolicyOutcomeKind.Applied, placement, decision.Reason, null, version.Name, version.Number, clock.Elapsed, decision.AllowsColocatedReplicas);
    }

    private PolicyOutcome TimedOut(PolicyCall call)
    {
        call.Cancel();
        return Fail(call.Context, call.Version, PolicyFailureReason.Timeout, $"no answer within {_timeout.TotalSeconds:0.###} s; the call was cancelled", call.Clock);
    }

    private PolicyOutcome CallerCancelled(PolicyCall call)
    {
        call.Cancel();
        return Fail(call.Context, call.Version, PolicyFailureReason.Cancelled, "the caller cancelled the call", call.Clock);
    }

    private PolicyOutcome Fail(PolicyContext context, PolicyVersion version, PolicyFailureReason reason, string message, Stopwatch clock)
    {
        Interlocked.Increment(ref _failures[(int)reason]);
        Log.DecisionFailed(_logger, version.Name, version.Number, reason, message);
        return new PolicyOutcome(PolicyOutcomeKind.Failed, context.Current, message, reason, version.Name, version.Number, clock.Elapsed);
    }

    private readonly record struct CallResult(PolicyDecision? Decision, string? Error, bool Cancelled);

    /// <summary>
    /// One call on a worker. It owns its lease and its cancellation source and releases both when the policy
    /// returns, however late, so that a version never unloads under a running call.
    /// </summary>
    private sealed class PolicyCall
    {
        private readonly PolicyLease _lease;
        private readonly CancellationTokenSource _cancellation;
        private readonly TaskCompletionSource<CallResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Lock _gate = new();
        private bool _finished;

        public PolicyCall(PolicyLease lease, PolicyContext caller, Stopwatch clock)
        {
            _lease = lease;
            Clock = clock;
            Context = caller;
            _cancellation = CancellationTokenSource.CreateLinkedTokenSource(caller.Cancellation);
        }

        public PolicyVersion Version => _lease.Version;

        /// <summary>The caller's context (the policy gets a copy whose token also fires at the time limit).</summary>
        public PolicyContext Context { get; }

        public Stopwatch Clock { get; }

        public Task<CallResult> Completion => _completion.Task;

        public void Run()
        {
            var version = Version;
            CallResult result;
            try
            {
                var c = Context;
                var context = new PolicyContext(c.Topology, c.History, c.Current, c.Options, c.ExpertGroups, c.LayerExpertBytes, c.Step, _cancellation.Token);
                var decision = version.Policy.Decide(context);
                result = decision is null
                    ? new CallResult(null, "Decide returned null instead of a PolicyDecision", false)
                    : new CallResult(decision, null, false);
            }
            catch (OperationCanceledException) when (_cancellation.IsCancellationRequested)
            {
                result = new CallResult(null, null, true);
            }
            catch (Exception ex)
            {
                result = new CallResult(null, ScriptFailure.Describe(ex, version.SourceFiles), false);
            }
            finally
            {
                lock (_gate)
                {
                    _finished = true;
                    _cancellation.Dispose();
                }

                // Before the answer is published: a caller that sees it may call again at once.
                version.ExitCall();
                _lease.Dispose();
            }

            _completion.SetResult(result);
        }

        public void Cancel()
        {
            lock (_gate)
            {
                if (!_finished)
                {
                    // Asynchronously: the policy's own callbacks must not run on (and stall) the caller's thread.
                    _ = _cancellation.CancelAsync();
                }
            }
        }
    }
}
