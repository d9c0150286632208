using Identity.Contracts;
using Identity.Region.Replica;
using MassTransit;

namespace Identity.Region.Messaging;

// One batch consumer per event, each a thin shell over ReplicaWriter (where the rules and their tests are).
// MassTransit hands a consumer the messages that arrived together (up to IdentityRegionOptions.BatchSize, waiting at
// most BatchWindow after the first), in one DI scope, hence one DbContext: the batch is one transaction and one
// commit, where one message per transaction spent its time on the commit and the per-message plumbing.

public sealed class UserChangedConsumer(ReplicaWriter writer, RegionMetrics metrics) : IConsumer<Batch<UserChanged>>
{
    public Task Consume(ConsumeContext<Batch<UserChanged>> context)
    {
        var events = context.Message.Messages();
        metrics.Received(context.Message);
        return BatchMessages.ApplyTracedAsync(context.Message,
            () => metrics.ApplyAsync(events, () => writer.ApplyAsync(events, context.CancellationToken)));
    }
}

public sealed class UserDeletedConsumer(ReplicaWriter writer, RegionMetrics metrics) : IConsumer<Batch<UserDeleted>>
{
    public Task Consume(ConsumeContext<Batch<UserDeleted>> context) => metrics.ApplyEachAsync(context, writer, writer.ApplyAsync);
}

public sealed class AccountChangedConsumer(ReplicaWriter writer, RegionMetrics metrics) : IConsumer<Batch<AccountChanged>>
{
    public Task Consume(ConsumeContext<Batch<AccountChanged>> context) => metrics.ApplyEachAsync(context, writer, writer.ApplyAsync);
}

public sealed class SessionsRevokedConsumer(ReplicaWriter writer, RegionMetrics metrics) : IConsumer<Batch<SessionsRevoked>>
{
    public Task Consume(ConsumeContext<Batch<SessionsRevoked>> context) => metrics.ApplyEachAsync(context, writer, writer.ApplyAsync);
}

internal static class BatchMessages
{
    /// <summary>A batch applied event by event by <paramref name="rule"/>, in one transaction.</summary>
    public static Task ApplyEachAsync<T>(
        this RegionMetrics metrics, ConsumeContext<Batch<T>> context, ReplicaWriter writer, Func<T, CancellationToken, Task<ReplicaOutcome>> rule)
        where T : class
    {
        var events = context.Message.Messages();
        metrics.Received(context.Message);
        return ApplyTracedAsync(context.Message,
            () => metrics.ApplyAsync(events, () => writer.ApplyAllAsync(events, rule, context.CancellationToken)));
    }

    /// <summary>Runs <paramref name="apply"/> (the batch's transaction) inside the batch's span (decision 0084).</summary>
    public static async Task ApplyTracedAsync<T>(Batch<T> batch, Func<Task> apply)
        where T : class
    {
        using var activity = RegionTracing.StartApply(batch);
        try
        {
            await apply();
        }
        catch (Exception e)
        {
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, e.GetType().Name);
            throw;
        }
    }

    public static IReadOnlyList<T> Messages<T>(this Batch<T> batch)
        where T : class
    {
        var messages = new T[batch.Length];
        for (var i = 0; i < batch.Length; i++)
        {
            messages[i] = batch[i].Message;
        }

        return messages;
    }
}
