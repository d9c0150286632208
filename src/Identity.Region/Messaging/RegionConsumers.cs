using Identity.Contracts;
using Identity.Region.Replica;
using MassTransit;

namespace Identity.Region.Messaging;

// One consumer per event, each a thin shell over ReplicaWriter (where the rules and their tests are). MassTransit
// gives each message its own DI scope, hence its own DbContext.

public sealed class UserChangedConsumer(ReplicaWriter writer) : IConsumer<UserChanged>
{
    public Task Consume(ConsumeContext<UserChanged> context) => writer.ApplyAsync(context.Message, context.CancellationToken);
}

public sealed class UserDeletedConsumer(ReplicaWriter writer) : IConsumer<UserDeleted>
{
    public Task Consume(ConsumeContext<UserDeleted> context) => writer.ApplyAsync(context.Message, context.CancellationToken);
}

public sealed class AccountChangedConsumer(ReplicaWriter writer) : IConsumer<AccountChanged>
{
    public Task Consume(ConsumeContext<AccountChanged> context) => writer.ApplyAsync(context.Message, context.CancellationToken);
}

public sealed class SessionsRevokedConsumer(ReplicaWriter writer) : IConsumer<SessionsRevoked>
{
    public Task Consume(ConsumeContext<SessionsRevoked> context) => writer.ApplyAsync(context.Message, context.CancellationToken);
}
