using System.Data.Common;
using System.Runtime.CompilerServices;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Operations;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Identity.Core.Propagation;

/// <summary>
/// The transactional outbox's safety net: the operations (<see cref="ChangeUnit"/>) add the events of what they change
/// themselves; on every SaveChanges of the authority's context, a change to a user, an account or an account's regions
/// that no operation named is reported (<see cref="ChangesOutsideOperations"/>) and, unless that fails the SaveChanges,
/// its events are added to the same SaveChanges, hence the same database transaction (a failed write leaves no row; a
/// committed one always has its rows). It also wakes the dispatcher when a transaction holding rows commits.
/// </summary>
/// <remarks>
/// Routing is decided by <see cref="RegionRouting"/>: an event about a user goes only to the regions the user's account
/// lives in. Enabling a region sends it the account and its users; disabling one sends it their deletion. Versions only grow,
/// so regions can ignore anything older than what they hold (the contract's rule).
/// </remarks>
public sealed class OutboxInterceptor(TimeProvider time, OutboxSignal signal, ChangesOutsideOperations? outside = null)
    : SaveChangesInterceptor, IDbTransactionInterceptor
{
    private readonly ChangesOutsideOperations _outside = outside ?? ChangesOutsideOperations.Unwatched;

    // Contexts whose pending transaction holds outbox rows: the dispatcher is woken when it commits.
    private readonly ConditionalWeakTable<DbContext, object> _wroteRows = [];

    // Contexts whose SaveChanges in progress runs without its own change detection (see WriteEventsAsync); it is turned
    // back on however that SaveChanges ends (a pooled context is also reset with it on).
    private readonly ConditionalWeakTable<DbContext, object> _detectionSkipped = [];

    public override async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        if (eventData.Context is AuthorityDbContext db)
        {
            await WriteEventsAsync(db, cancellationToken);
        }

        return result;
    }

    public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        if (eventData.Context is AuthorityDbContext db)
        {
            // Synchronous SaveChanges is rare here (ASP.NET Core Identity and the admin API save asynchronously).
            WriteEventsAsync(db, CancellationToken.None).GetAwaiter().GetResult();
        }

        return result;
    }

    public override ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        RestoreDetection(eventData.Context);
        NotifyIfCommitted(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public override int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        RestoreDetection(eventData.Context);
        NotifyIfCommitted(eventData.Context);
        return result;
    }

    public override Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        RestoreDetection(eventData.Context);
        return Task.CompletedTask;
    }

    public override void SaveChangesFailed(DbContextErrorEventData eventData) => RestoreDetection(eventData.Context);

    public override Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
    {
        RestoreDetection(eventData.Context);
        return Task.CompletedTask;
    }

    public override void SaveChangesCanceled(DbContextEventData eventData) => RestoreDetection(eventData.Context);

    // A concurrency failure (OpenIddict's concurrency tokens) ends SaveChanges without SaveChangesFailed.
    public override ValueTask<InterceptionResult> ThrowingConcurrencyExceptionAsync(ConcurrencyExceptionEventData eventData,
        InterceptionResult result, CancellationToken cancellationToken = default)
    {
        RestoreDetection(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult ThrowingConcurrencyException(ConcurrencyExceptionEventData eventData, InterceptionResult result)
    {
        RestoreDetection(eventData.Context);
        return result;
    }

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        NotifyIfCommitted(eventData.Context);
        return Task.CompletedTask;
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => NotifyIfCommitted(eventData.Context);

    public Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Forget(eventData.Context);
        return Task.CompletedTask;
    }

    public void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) => Forget(eventData.Context);

    private void NotifyIfCommitted(DbContext? context)
    {
        if (context is not null && context.Database.CurrentTransaction is null && _wroteRows.TryGetValue(context, out _))
        {
            _wroteRows.Remove(context);
            signal.Notify();
        }
    }

    private void RestoreDetection(DbContext? context)
    {
        if (context is not null && _detectionSkipped.TryGetValue(context, out _))
        {
            _detectionSkipped.Remove(context);
            context.ChangeTracker.AutoDetectChangesEnabled = true;
        }
    }

    private void Forget(DbContext? context)
    {
        if (context is not null)
        {
            _wroteRows.Remove(context);
        }
    }

    private async Task WriteEventsAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        // The running operation's audit entries and outbox rows, held untracked until a write (Change.Rows), go with this
        // SaveChanges, as they did when they were added to the context at once; so do the rows added below.
        var operation = ChangeUnit.RunningOn(db);
        operation?.MoveRowsTo(db);

        // Entries() detects the changes first, unless automatic detection is off: calling DetectChanges before it scanned
        // every property of every tracked entity once more per SaveChanges (~2 % of the server's CPU per
        // authorization-code round trip, perf: OpenIddict saves up to three times per request with the user tracked).
        if (!db.ChangeTracker.AutoDetectChangesEnabled)
        {
            db.ChangeTracker.DetectChanges();
        }

        var entries = db.ChangeTracker.Entries()
            .Where(e => e.State is EntityState.Added or EntityState.Modified or EntityState.Deleted)
            .Where(e => e.Entity is ApplicationUser or Account or AccountRegion)
            .ToList();
        if (entries.Count == 0)
        {
            // Nothing for the outbox and nothing changed since that scan: SaveChanges, which scans again right after its
            // interceptors, may skip it (another ~2 % of the server's CPU per authorization-code round trip).
            if (db.ChangeTracker.AutoDetectChangesEnabled)
            {
                db.ChangeTracker.AutoDetectChangesEnabled = false;
                _detectionSkipped.AddOrUpdate(db, this);
            }

            if (operation is not null && db.ChangeTracker.Entries<OutboxMessage>().Any(e => e.State == EntityState.Added))
            {
                _wroteRows.AddOrUpdate(db, this); // rows its operation added
            }

            return;
        }

        var now = time.GetUtcNow();
        var routing = new RegionRouting(db);
        var handledUsers = new HashSet<string>(StringComparer.Ordinal);

        // Accounts and users an operation named have their events from it (Operations.Change), in the order it decided.
        foreach (var accountId in AccountsTouched(entries).Where(id => operation?.Names(id) != true))
        {
            _outside.Report("account", accountId.ToString());
            await db.AddAccountEventsAsync(routing, accountId, entries, handledUsers, now, cancellationToken);
        }

        foreach (var entry in entries.Where(e => e.Entity is ApplicationUser user && !handledUsers.Contains(user.Id)
                     && operation?.Names(user) != true).ToList())
        {
            if (((ApplicationUser)entry.Entity).AccountId is not null && OutboxEvents.IsNews(entry))
            {
                _outside.Report("user", ((ApplicationUser)entry.Entity).Id);
            }

            if (entry.State == EntityState.Modified && OutboxEvents.IsNews(entry))
            {
                OutboxEvents.BumpVersion(entry);
            }

            await db.AddUserEventAsync(routing, entry, now, cancellationToken);
        }

        operation?.MoveRowsTo(db); // what the lines above added inside the operation
        if (db.ChangeTracker.Entries<OutboxMessage>().Any(e => e.State == EntityState.Added))
        {
            _wroteRows.AddOrUpdate(db, this); // this SaveChanges' rows, or those its operation added before it
        }
    }

    private static IEnumerable<Guid> AccountsTouched(List<EntityEntry> entries) =>
        entries.Select(e => e.Entity switch
            {
                Account a => a.Id,
                AccountRegion r => r.AccountId,
                _ => Guid.Empty,
            })
            .Where(id => id != Guid.Empty)
            .Distinct();

}
