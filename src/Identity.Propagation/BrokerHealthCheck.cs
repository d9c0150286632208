using MassTransit;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Identity.Propagation;

/// <summary>Whether the dispatcher's last attempt to publish reached the broker (set by <see cref="OutboxDispatcher"/>).</summary>
public sealed class OutboxPublishState
{
    private volatile string? _failure;

    /// <summary>Why the last round failed; null once a round published again (or none failed yet).</summary>
    public string? Failure => _failure;

    public void Succeeded() => _failure = null;

    public void Failed(string reason) => _failure = reason;
}

/// <summary>
/// The <c>broker</c> readiness check: MassTransit's bus state and whether publishing works. A server that only
/// publishes has no receive endpoint, so MassTransit's own check stays "Healthy" while the broker is down; the
/// dispatcher's failing rounds say it. Either way the result is at worst "Degraded" (still 200): sign-ins and the admin
/// API work without the broker, their events wait in the outbox.
/// </summary>
public sealed class BrokerHealthCheck(IBusControl bus, OutboxPublishState publishing) : IHealthCheck
{
    /// <summary>The check's name in <c>/health/ready</c>'s body.</summary>
    public const string Name = "broker";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var busHealth = bus.CheckHealth();
        if (busHealth.Status != BusHealthStatus.Healthy)
        {
            return Task.FromResult(HealthCheckResult.Degraded($"Message bus {busHealth.Status}; events wait in the outbox."));
        }

        return Task.FromResult(publishing.Failure is { } failure
            ? HealthCheckResult.Degraded($"Publishing to the broker fails ({failure}); events wait in the outbox.")
            : HealthCheckResult.Healthy("Connected; the outbox dispatcher publishes."));
    }
}
