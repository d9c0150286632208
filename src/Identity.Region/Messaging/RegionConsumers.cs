using Identity.Contracts;
using Identity.Region.Replica;
using MassTransit;

namespace Identity.Region.Messaging;

// One batch consumer per event, each a thin shell over ReplicaWriter (where the rules and their tests are).
// MassTransit hands a consumer the messages that arrived together (up to IdentityRegionOptions.BatchSize, waiting at
// most BatchWindow after the first), in one DI scope, hence one DbContext: the batch is one transaction and one
// commit, where one message per transaction spent its time on the commit and the per-message plumbing.

public sealed class UserChangedConsumer(ReplicaWriter writer) : IConsumer<Batch<UserChanged>>
{
    public Task Consume(ConsumeContext<Batch<UserChanged>> context) =>
        writer.ApplyAsync(context.Message.Messages(), context.CancellationToken);
}

public sealed class UserDeletedConsumer(ReplicaWriter writer) : IConsumer<Batch<UserDeleted>>
{
    public Task Consume(ConsumeContext<Batch<UserDeleted>> context) =>
        writer.ApplyAllAsync(context.Message.Messages(), writer.ApplyAsync, context.CancellationToken);
}

public sealed class AccountChangedConsumer(ReplicaWriter writer) : IConsumer<Batch<AccountChanged>>
{
    public Task Consume(ConsumeContext<Batch<AccountChanged>> context) =>
        writer.ApplyAllAsync(context.Message.Messages(), writer.ApplyAsync, context.CancellationToken);
}

public sealed class SessionsRevokedConsumer(ReplicaWriter writer) : IConsumer<Batch<SessionsRevoked>>
{
    public Task Consume(ConsumeContext<Batch<SessionsRevoked>> context) =>
        writer.ApplyAllAsync(context.Message.Messages(), writer.ApplyAsync, context.CancellationToken);
}

internal static class BatchMessages
{
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
