using System.Data.Common;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace Identity.Region.Messaging;

/// <summary>
/// The consumers and their receive endpoint, independent of the transport. With RabbitMQ:
/// <code>
/// bus.UsingRabbitMq((context, rabbit) =>
///     rabbit.ReceiveEndpoint(RegionTopology.QueueFor(region), e => e.ConfigureIdentityRegionEndpoint(context)));
/// </code>
/// </summary>
public static class RegionBusExtensions
{
    /// <summary>Registers the four replica consumers.</summary>
    public static IBusRegistrationConfigurator AddIdentityRegionConsumers(this IBusRegistrationConfigurator bus)
    {
        ArgumentNullException.ThrowIfNull(bus);
        bus.AddConsumer<UserChangedConsumer>();
        bus.AddConsumer<UserDeletedConsumer>();
        bus.AddConsumer<AccountChangedConsumer>();
        bus.AddConsumer<SessionsRevokedConsumer>();
        return bus;
    }

    /// <summary>
    /// Puts the four consumers on one endpoint (the region's queue), with retries for transient database errors
    /// (a locked SQLite file, a dropped connection). Retrying is safe: applying a snapshot twice changes nothing.
    /// Anything else faults at once and goes to the error queue.
    /// </summary>
    public static IReceiveEndpointConfigurator ConfigureIdentityRegionEndpoint(this IReceiveEndpointConfigurator endpoint, IBusRegistrationContext context)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        endpoint.UseMessageRetry(retry =>
        {
            retry.Exponential(6, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(200));
            retry.Handle<DbException>();
            retry.Handle<DbUpdateException>();
            retry.Handle<TimeoutException>();
        });
        endpoint.ConfigureConsumer<UserChangedConsumer>(context);
        endpoint.ConfigureConsumer<UserDeletedConsumer>(context);
        endpoint.ConfigureConsumer<AccountChangedConsumer>(context);
        endpoint.ConfigureConsumer<SessionsRevokedConsumer>(context);
        return endpoint;
    }
}
