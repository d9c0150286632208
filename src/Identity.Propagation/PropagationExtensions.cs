using Identity.Messaging;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Identity.Propagation;

public static class PropagationExtensions
{
    /// <summary>
    /// Propagation to the regions, sending side: the outbox's options and metrics (always: every change is recorded, and
    /// <c>GET /admin/v1/outbox</c> shows the backlog), and, only when a broker is configured, the bus, the dispatcher and
    /// the <c>broker</c> readiness check (without one, events wait in the outbox). The writing side is the store's
    /// interceptor (<see cref="Core.Propagation.OutboxInterceptor"/>).
    /// </summary>
    /// <param name="readyTag">The tag of the readiness checks the <c>broker</c> check joins.</param>
    public static IHostApplicationBuilder AddPropagation(this IHostApplicationBuilder builder, string readyTag)
    {
        builder.Services.AddOptions<OutboxOptions>()
            .BindConfiguration(OutboxOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate(o => o.BusyPollInterval <= o.PollInterval, "Outbox:BusyPollInterval must not exceed Outbox:PollInterval.")
            .ValidateOnStart();
        builder.Services.AddMetrics();
        builder.Services.AddSingleton<OutboxMetrics>();

        // A broker is configured by its host (section "Broker"); without one, events wait in the outbox (pending) and
        // GET /admin/v1/outbox shows how many and how old.
        if (builder.Configuration.GetSection(BrokerOptions.SectionName)[nameof(BrokerOptions.Host)] is { Length: > 0 })
        {
            builder.Services.AddBrokerOptions();
            builder.Services.AddMassTransit(bus =>
            {
                // MassTransit's own check is not a readiness check here: a server that only publishes has no receive
                // endpoint, and its bus stays "Healthy" while the broker is down. BrokerHealthCheck says it instead.
                bus.ConfigureHealthCheckOptions(health => health.Tags.Clear());
                bus.UsingRabbitMq((context, rabbit) =>
                    rabbit.UseIdentityBroker(context.GetRequiredService<IOptions<BrokerOptions>>().Value));
            });
            builder.Services.AddSingleton<OutboxPublishState>();
            // At worst "Degraded" (200): a broker that is down must not take every replica out of rotation, since
            // sign-ins and the admin API keep working and their events wait in the outbox.
            builder.Services.AddHealthChecks().AddCheck<BrokerHealthCheck>(BrokerHealthCheck.Name, HealthStatus.Degraded, [readyTag]);
            builder.Services.AddSingleton<IOutboxTransport, MassTransitOutboxTransport>();
            builder.Services.AddSingleton<DispatchLease>();
            builder.Services.AddHostedService<OutboxDispatcher>();
        }

        return builder;
    }
}
