using System.Diagnostics;
using Identity.Core.Propagation;

namespace Identity.Propagation;

/// <summary>
/// The dispatcher's spans (decision 0084): one <c>outbox dispatch</c> span per row sent, a child of the change that
/// wrote the row (its stored <see cref="OutboxMessage.TraceParent"/>), so the admin request, the dispatch and the
/// regions' apply are one trace although the row is sent later, from another thread or replica.
/// </summary>
public static class OutboxTracing
{
    /// <summary>The <see cref="ActivitySource"/> a tracer provider adds to record the dispatch spans.</summary>
    public const string SourceName = "Identity.Outbox";

    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>
    /// Starts the row's dispatch span under the change's context (none stored: a trace of its own). Null when nothing
    /// listens; an unsampled parent gives an unrecorded span that still propagates (parent-based sampling).
    /// </summary>
    public static Activity? StartDispatch(OutboxMessage row)
    {
        ActivityContext.TryParse(row.TraceParent, row.TraceState, isRemote: true, out var parent);
        var activity = Source.StartActivity("outbox dispatch", ActivityKind.Internal, parent);
        if (activity is { IsAllDataRequested: true })
        {
            // No payload, no user: what an operator needs to find the row (GET /admin/v1/outbox) and its region.
            activity.SetTag("identity.outbox.row_id", row.Id);
            activity.SetTag("identity.region", row.Region);
            activity.SetTag("identity.event", row.MessageType);
        }

        return activity;
    }

    /// <summary>
    /// The context the message carries to the region: the dispatch span's, or, when the authority records no spans,
    /// the change's own, so that a region that traces still joins the change's trace.
    /// </summary>
    public static (string? TraceParent, string? TraceState) Propagated(Activity? dispatch, OutboxMessage row) =>
        dispatch is { IdFormat: ActivityIdFormat.W3C, Id: { } id }
            ? (id, dispatch.TraceStateString)
            : (row.TraceParent, row.TraceState);

    /// <summary>Marks the span failed with the exception's type (its message may name the broker's internals).</summary>
    public static void Failed(Activity? dispatch, Exception e) => dispatch?.SetStatus(ActivityStatusCode.Error, e.GetType().Name);
}
