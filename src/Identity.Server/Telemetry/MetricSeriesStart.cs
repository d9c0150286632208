using Identity.Propagation;

namespace Identity.Server.Telemetry;

/// <summary>
/// Creates the meters and their zero series once OpenTelemetry's exporters listen (it starts after their hosted service),
/// so that a scrape shows every metric from the first one on, the outbox's too on a server without a broker.
/// </summary>
public sealed class MetricSeriesStart(AuthorityMetrics authority, OutboxMetrics outbox) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        authority.StartSeries();
        outbox.StartSeries();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
