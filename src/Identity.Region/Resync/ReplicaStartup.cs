using Identity.Region.Replica;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;

namespace Identity.Region.Resync;

/// <summary>
/// At start: applies the replica's migrations before the host serves anything, then resyncs in the background
/// (every start with <see cref="IdentityRegionOptions.ResyncOnStart"/>, else only if the replica was never fully
/// synced), retrying with exponential back-off while Identity is unreachable. A failed resync is logged, never
/// fatal: the replica keeps what it has and events keep flowing.
/// </summary>
public sealed class ReplicaStartup(IServiceProvider services, IOptions<IdentityRegionOptions> options, ILogger<ReplicaStartup> logger)
    : BackgroundService
{
    /// <summary>Nine attempts over about 8.5 minutes (2 s doubling to 256 s, with jitter); after that, the next start or an on-demand run.</summary>
    internal static RetryStrategyOptions Retry { get; } = new()
    {
        MaxRetryAttempts = 8,
        BackoffType = DelayBackoffType.Exponential,
        Delay = TimeSpan.FromSeconds(2),
        MaxDelay = TimeSpan.FromMinutes(5),
        UseJitter = true,
    };

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await using (var scope = services.CreateAsyncScope())
        {
            var replica = scope.ServiceProvider.GetRequiredService<RegionReplicaDbContext>();
            var database = replica.Database;
            await database.MigrateAsync(cancellationToken);
            if (SqliteReplicaTuning.AppliesTo(replica))
            {
                await database.ExecuteSqlRawAsync(SqliteReplicaTuning.WriteAheadLog, cancellationToken);
            }
        }

        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            if (!await NeedsResyncAsync(stoppingToken))
            {
                return;
            }

            var pipeline = new ResiliencePipelineBuilder()
                .AddRetry(new RetryStrategyOptions
                {
                    MaxRetryAttempts = Retry.MaxRetryAttempts,
                    BackoffType = Retry.BackoffType,
                    Delay = Retry.Delay,
                    MaxDelay = Retry.MaxDelay,
                    UseJitter = Retry.UseJitter,
                    OnRetry = retry =>
                    {
                        logger.LogWarning("Replica resync for region {Region} failed (attempt {Attempt}), retrying in {Delay}: {Error}",
                            options.Value.Region, retry.AttemptNumber + 1, retry.RetryDelay, retry.Outcome.Exception?.Message);
                        return ValueTask.CompletedTask;
                    },
                })
                .Build();

            await pipeline.ExecuteAsync(async token =>
            {
                await using var scope = services.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<IReplicaResync>().RunAsync(token);
            }, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The host is stopping.
        }
        catch (Exception exception)
        {
            logger.LogError(exception, "Replica resync for region {Region} gave up; the replica keeps its current content.", options.Value.Region);
        }
    }

    private async Task<bool> NeedsResyncAsync(CancellationToken cancellationToken)
    {
        if (options.Value.ResyncOnStart)
        {
            return true;
        }

        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegionReplicaDbContext>();
        return !await db.ReplicaState.AnyAsync(s => s.LastFullResyncAt != null, cancellationToken);
    }
}
