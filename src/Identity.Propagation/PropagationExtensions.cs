using Identity.Messaging;
using Identity.Server.Outbox;
using MassTransit;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Identity.Server.Sync;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;

namespace Identity.Server.Hosting;

public static class MessagingExtensions
{
    /// <summary>
    /// Propagation to the regions: the outbox (always: every change is recorded), its dispatcher (only when a broker is
    /// configured: without one, events wait in the outbox), its metrics, and the regions' sync API.
    /// </summary>
    public static IHostApplicationBuilder AddMessaging(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<OutboxOptions>()
            .BindConfiguration(OutboxOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate(o => o.BusyPollInterval <= o.PollInterval, "Outbox:BusyPollInterval must not exceed Outbox:PollInterval.")
            .ValidateOnStart();
        builder.Services.AddMetrics();
        builder.Services.AddSingleton<OutboxMetrics>();

        // A broker is configured by its host (section "Broker"); without one, events wait in the outbox (pending) and
        // GET /admin/v1/outbox shows how many and how old. MassTransit adds its bus to the readiness checks.
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
            builder.Services.AddHealthChecks().AddCheck<BrokerHealthCheck>(HealthExtensions.BrokerCheck, HealthStatus.Degraded, [HealthExtensions.ReadyTag]);
            builder.Services.AddSingleton<IOutboxTransport, MassTransitOutboxTransport>();
            builder.Services.AddHostedService<OutboxDispatcher>();
        }

        builder.Services.AddOpenIddict().AddValidation(validation => validation.AddAudiences(SyncApi.Audience));
        builder.Services.AddAuthorizationBuilder().AddPolicy(SyncApi.Policy, policy => policy
            .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(context => context.User.HasScope(SyncApi.Scope)));
        return builder;
    }

    public static WebApplication MapMessaging(this WebApplication app)
    {
        app.MapSyncApi();
        return app;
    }
}
