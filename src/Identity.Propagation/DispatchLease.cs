using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Identity.Propagation;

/// <summary>
/// Which replica dispatches: one row in <c>OutboxLeases</c> held by one owner until it expires
/// (<see cref="OutboxOptions.LeaseDuration"/>), renewed by its holder, taken over by another replica once it has expired
/// (the holder died), released at a clean shutdown so a successor need not wait. One instance per dispatcher.
/// </summary>
public sealed partial class DispatchLease(IServiceScopeFactory scopes, IOptions<OutboxOptions> options, TimeProvider time, ILogger<DispatchLease> logger)
{
    private const string Name = "outbox-dispatcher";

    private DateTimeOffset _until = DateTimeOffset.MinValue;

    /// <summary>This process's name in the lease row: host, process and a per-instance id.</summary>
    public string Owner { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";

    /// <summary>
    /// How long this replica may still publish: the time left on its lease, less a margin for the clocks and the
    /// database round trip of a successor's take-over (zero when it holds none). Past it another replica may hold the
    /// lease and publish the same rows, so a round sends nothing after it.
    /// </summary>
    public TimeSpan Remaining
    {
        get
        {
            var left = _until - time.GetUtcNow() - options.Value.LeaseDuration / 10;
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }

    /// <summary>Takes or renews the lease; a renewal is written only once a third of it is used up.</summary>
    /// <returns>Whether this replica holds the lease now.</returns>
    public async Task<bool> HoldAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var duration = options.Value.LeaseDuration;
        if (_until - now > duration * 2 / 3)
        {
            return true;
        }

        var until = now + duration;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var taken = await db.OutboxLeases
            .Where(l => l.Name == Name && (l.Owner == Owner || l.ExpiresAt < now))
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Owner, Owner).SetProperty(l => l.ExpiresAt, until), cancellationToken);
        if (taken == 0 && !await db.OutboxLeases.AnyAsync(l => l.Name == Name, cancellationToken))
        {
            db.OutboxLeases.Add(new OutboxLease { Name = Name, Owner = Owner, ExpiresAt = until });
            try
            {
                taken = await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateException)
            {
                taken = 0; // another replica created it first
            }
        }

        if (taken > 0 && _until < now)
        {
            LogTaken(logger, Owner);
        }

        _until = taken > 0 ? until : DateTimeOffset.MinValue;
        return taken > 0;
    }

    /// <summary>Lets the lease go at once (a clean shutdown); on failure it simply expires.</summary>
    public async Task ReleaseAsync()
    {
        if (_until < time.GetUtcNow())
        {
            return;
        }

        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var past = time.GetUtcNow().AddSeconds(-1);
            await db.OutboxLeases.Where(l => l.Name == Name && l.Owner == Owner)
                .ExecuteUpdateAsync(s => s.SetProperty(l => l.ExpiresAt, past), CancellationToken.None);
            _until = DateTimeOffset.MinValue;
        }
        catch (Exception e) when (e is DbUpdateException or InvalidOperationException or System.Data.Common.DbException)
        {
            LogReleaseFailed(logger, e.GetType().Name, e.Message);
        }
    }

    [LoggerMessage(LogLevel.Information, "Outbox dispatcher {Owner} holds the lease and publishes")]
    private static partial void LogTaken(ILogger logger, string owner);

    [LoggerMessage(LogLevel.Warning, "Outbox lease not released ({ErrorType}: {ErrorMessage}); it expires on its own")]
    private static partial void LogReleaseFailed(ILogger logger, string errorType, string errorMessage);
}
