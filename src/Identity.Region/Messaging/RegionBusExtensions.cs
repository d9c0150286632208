using System.Data.Common;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

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
    /// Anything else faults at once and goes to the error queue. Messages are applied in batches
    /// (<see cref="IdentityRegionOptions.BatchSize"/>, <see cref="IdentityRegionOptions.BatchWindow"/>), so the endpoint
    /// lets at least a batch's worth of messages in at once and prefetches at least that many.
    /// </summary>
    public static IReceiveEndpointConfigurator ConfigureIdentityRegionEndpoint(this IReceiveEndpointConfigurator endpoint, IBusRegistrationContext context)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(context);
        var options = context.GetRequiredService<IOptions<IdentityRegionOptions>>().Value;
        // Messages waiting in a batch count against the endpoint's limit: below a batch, batches could never fill.
        var inFlight = options.BatchSize * options.ConsumerConcurrency;
        endpoint.ConcurrentMessageLimit = Math.Max(endpoint.ConcurrentMessageLimit ?? 0, inFlight);
        endpoint.PrefetchCount = Math.Max(Math.Max(endpoint.PrefetchCount, options.Prefetch), inFlight);

        endpoint.UseMessageRetry(retry =>
        {
            retry.Exponential(6, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(200));
            retry.Handle<DbException>();
            retry.Handle<DbUpdateException>();
            retry.Handle<TimeoutException>();
        });
        endpoint.ConfigureConsumer<UserChangedConsumer>(context, c => c.Options<BatchOptions>(b => Batching(b, options)));
        endpoint.ConfigureConsumer<UserDeletedConsumer>(context, c => c.Options<BatchOptions>(b => Batching(b, options)));
        endpoint.ConfigureConsumer<AccountChangedConsumer>(context, c => c.Options<BatchOptions>(b => Batching(b, options)));
        endpoint.ConfigureConsumer<SessionsRevokedConsumer>(context, c => c.Options<BatchOptions>(b => Batching(b, options)));
        return endpoint;
    }

    private static void Batching(BatchOptions batch, IdentityRegionOptions options) => batch
        .SetMessageLimit(options.BatchSize)
        .SetTimeLimit(options.BatchWindow)
        .SetTimeLimitStart(BatchTimeLimitStart.FromFirst)
        .SetConcurrencyLimit(options.ConsumerConcurrency);
}
