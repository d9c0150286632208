using System.ComponentModel.DataAnnotations;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Identity.Server.Audit;

/// <summary>The <c>Audit</c> configuration section.</summary>
public sealed class AuditOptions
{
    public const string SectionName = "Audit";

    /// <summary>How long audit entries are kept (default 400 days, beyond a yearly review).</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(400);

    [Range(typeof(TimeSpan), "00:01:00", "1.00:00:00")]
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>Deletes audit entries older than the retention period, in bounded batches, on every replica (idempotent).</summary>
public sealed class AuditRetention(IServiceScopeFactory scopes, IOptions<AuditOptions> options, TimeProvider time, ILogger<AuditRetention> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        do
        {
            try
            {
                await SweepAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Audit retention sweep failed; retrying at the next interval");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var cutoff = time.GetUtcNow() - options.Value.Retention;
        var total = 0;
        int deleted;
        do
        {
            var batch = await db.AuditEntries.Where(e => e.At < cutoff).OrderBy(e => e.Id).Select(e => e.Id).Take(1000).ToListAsync(cancellationToken);
            deleted = batch.Count == 0 ? 0 : await db.AuditEntries.Where(e => batch.Contains(e.Id)).ExecuteDeleteAsync(cancellationToken);
            total += deleted;
        }
        while (deleted > 0);

        if (total > 0)
        {
            logger.LogInformation("Deleted {Count} audit entries older than {Cutoff}", total, cutoff);
        }

        return total;
    }
}
