using System.Diagnostics;
using Identity.Messaging;
using MassTransit;

namespace Identity.Region.Messaging;

/// <summary>
/// The replica's spans (decision 0084): one <c>replica apply</c> span per batch applied, in the trace of the change
/// at the authority that caused it. Each event carries that trace in its W3C headers (<see cref="TraceHeaders"/>,
/// written by the authority's outbox dispatcher). A batch is one transaction for events of several changes, and a span
/// has one parent: the first event whose trace is recorded (else the first with a trace) is the parent, the other
/// events' traces are links, so each change's trace finds the apply that carried it.
/// </summary>
public static class RegionTracing
{
    /// <summary>The <see cref="ActivitySource"/> a regional service's tracer provider adds to record the apply spans.</summary>
    public const string SourceName = "Identity.Region";

    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>Starts the batch's apply span; null when nothing listens.</summary>
    public static Activity? StartApply<T>(Batch<T> batch)
        where T : class
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        ActivityContext parent = default;
        List<ActivityContext>? others = null;
        for (var i = 0; i < batch.Length; i++)
        {
            if (!TryReadContext(batch[i], out var context))
            {
                continue;
            }

            if (parent == default || (!parent.TraceFlags.HasFlag(ActivityTraceFlags.Recorded) && context.TraceFlags.HasFlag(ActivityTraceFlags.Recorded)))
            {
                if (parent != default)
                {
                    (others ??= []).Add(parent);
                }

                parent = context;
            }
            else if (context.TraceId != parent.TraceId)
            {
                (others ??= []).Add(context);
            }
        }

        var links = others?.DistinctBy(c => c.TraceId).Where(c => c.TraceId != parent.TraceId).Select(c => new ActivityLink(c));
        var activity = Source.StartActivity("replica apply", ActivityKind.Consumer, parent, links: links);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("identity.event", typeof(T).Name);
            activity.SetTag("messaging.batch.message_count", batch.Length);
        }

        return activity;
    }

    /// <summary>The trace context an event carries (its <c>traceparent</c> and <c>tracestate</c> headers), if any.</summary>
    public static bool TryReadContext(ConsumeContext message, out ActivityContext context)
    {
        context = default;
        var traceParent = Header(message, TraceHeaders.TraceParent);
        return traceParent is not null
            && ActivityContext.TryParse(traceParent, Header(message, TraceHeaders.TraceState), isRemote: true, out context);
    }

    private static string? Header(ConsumeContext message, string name) =>
        message.Headers.Get<string>(name) ?? message.ReceiveContext.TransportHeaders.Get<string>(name);
}
