using System.Diagnostics;

namespace Identity.Core.Propagation;

/// <summary>
/// The trace context an outbox row carries from the change that wrote it to its dispatch (decision 0084): W3C Trace
/// Context (https://www.w3.org/TR/trace-context/) <c>traceparent</c> and <c>tracestate</c>, as strings, because the
/// row is sent later, by another thread or another replica, where the change's <see cref="Activity"/> is long gone.
/// </summary>
public static class OutboxTrace
{
    /// <summary>A version-00 <c>traceparent</c>: <c>00-{32 hex trace id}-{16 hex parent id}-{2 hex flags}</c> (§3.2).</summary>
    public const int TraceParentLength = 55;

    /// <summary>
    /// The longest <c>tracestate</c> kept. §3.3.1.5: a platform SHOULD propagate at least 512 characters and, when it
    /// truncates, removes whole list members; a longer one is dropped whole (the trace itself still flows).
    /// </summary>
    public const int TraceStateMaxLength = 512;

    /// <summary>
    /// The context of the current activity (the request or operation making the change), whether or not it is
    /// recorded: an unsampled parent keeps its dispatch and the regions' spans unsampled too (parent-based sampling).
    /// </summary>
    public static (string? TraceParent, string? TraceState) Current()
    {
        if (Activity.Current is not { IdFormat: ActivityIdFormat.W3C, Id: { Length: TraceParentLength } id } activity)
        {
            return (null, null);
        }

        return (id, activity.TraceStateString is { Length: > 0 and <= TraceStateMaxLength } state ? state : null);
    }
}
