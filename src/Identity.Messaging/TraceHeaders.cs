namespace Identity.Messaging;

/// <summary>
/// The message headers that carry an event's trace from the authority's outbox to the regions (decision 0084): W3C
/// Trace Context's own names, as its AMQP binding uses them (application properties <c>traceparent</c> and
/// <c>tracestate</c>), so a consumer other than MassTransit, or without its instrumentation, still finds the trace.
/// </summary>
public static class TraceHeaders
{
    public const string TraceParent = "traceparent";

    public const string TraceState = "tracestate";
}
