using System.Data.Common;
using System.Runtime.CompilerServices;
using Identity.Contracts;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Identity.Core.Propagation;

/// <summary>
/// The transactional outbox's writer: on every SaveChanges of the authority's context, the changes to users, accounts
/// and account regions become event rows added to the same SaveChanges, hence the same database transaction (a failed
/// write leaves no row; a committed one always has its rows). Every code path that changes a user — admin API,
/// self-service, lockout — goes through here, so none can forget its event.
/// </summary>
/// <remarks>
/// Routing is decided by <see cref="RegionRouting"/>: an event about a user goes only to the regions the user's account
/// lives in. Enabling a region sends it the account and its users; disabling one sends it their deletion. Versions only grow,
/// so regions can ignore anything older than what they hold (the contract's rule).
/// </remarks>
public sealed class OutboxInterceptor(TimeProvider time, OutboxSignal signal) : SaveChangesInterceptor, IDbTransactionInterceptor
{
    // The properties a region sees in UserChanged; a change to any other (password hash, security stamp, failed-attempt
    // counter) is not an event.
    private static readonly string[] UserSnapshotProperties =
    [
        nameof(ApplicationUser.Email), nameof(ApplicationUser.DisplayName), nameof(ApplicationUser.Role),
        nameof(ApplicationUser.Status), nameof(ApplicationUser.TwoFactorEnabled), nameof(ApplicationUser.LockoutEnd),
        nameof(ApplicationUser.AccountId),
    ];

    private static readonly string[] AccountSnapshotProperties = [nameof(Account.Name), nameof(Account.Status), nameof(Account.Settings)];

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

            return;
        }

        var before = db.ChangeTracker.Entries<OutboxMessage>().Count(e => e.State == EntityState.Added);
        var now = time.GetUtcNow();
        var routing = new RegionRouting(db);
        var handledUsers = new HashSet<string>(StringComparer.Ordinal);

        foreach (var accountId in AccountsTouched(entries))
        {
            routing.Moved(accountId, await WriteAccountEventsAsync(db, accountId, entries, handledUsers, now, cancellationToken));
        }

        foreach (var entry in entries.Where(e => e.Entity is ApplicationUser).ToList())
        {
            var user = (ApplicationUser)entry.Entity;
            var accountId = entry.State == EntityState.Deleted
                ? entry.Property(nameof(ApplicationUser.AccountId)).OriginalValue as Guid?
                : user.AccountId;
            if (accountId is not { } id || handledUsers.Contains(user.Id))
            {
                continue; // platform administrators live in no region; region moves already sent this user
            }

            if (entry.State == EntityState.Modified && !Changed(entry, UserSnapshotProperties))
            {
                continue;
            }

            var regions = await routing.OfUserAsync(entry, id, cancellationToken);
            if (entry.State == EntityState.Deleted)
            {
                // Newer than any snapshot of the user, so a late UserChanged cannot bring them back.
                db.Add(regions, new UserDeleted { UserId = user.Id, AccountId = id, Version = user.Version + 1, DeletedAt = now }, id, user.Id, now);
                continue;
            }

            BumpVersion(entry);
            db.Add(regions, OutboxEvents.Snapshot(user, now), id, user.Id, now);
        }

        if (db.ChangeTracker.Entries<OutboxMessage>().Count(e => e.State == EntityState.Added) > before)
        {
            _wroteRows.AddOrUpdate(db, this);
        }
    }

    /// <summary>Writes the account's own events and, when its regions change, its users' arrival or departure there.</summary>
    /// <returns>The regions the account lives in after this change.</returns>
    private static async Task<List<string>> WriteAccountEventsAsync(AuthorityDbContext db, Guid accountId, List<EntityEntry> entries,
        HashSet<string> handledUsers, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var stored = await RegionRouting.StoredAsync(db, accountId, cancellationToken);
        var links = entries.Where(e => e.Entity is AccountRegion r && r.AccountId == accountId).ToList();
        var added = links.Where(e => e.State == EntityState.Added).Select(e => ((AccountRegion)e.Entity).RegionCode).Except(stored).ToList();
        var removed = links.Where(e => e.State == EntityState.Deleted).Select(e => ((AccountRegion)e.Entity).RegionCode).Intersect(stored).ToList();
        var current = stored.Except(removed).Union(added).Order(StringComparer.Ordinal).ToList();

        var accountEntry = entries.FirstOrDefault(e => e.Entity is Account a && a.Id == accountId);
        var account = accountEntry?.Entity as Account ?? await db.Accounts.FindAsync([accountId], cancellationToken);
        if (account is null)
        {
            return current;
        }

        if (accountEntry?.State == EntityState.Deleted)
        {
            // The account is gone: every region it lived in forgets it and its users (AccountChanged without the region).
            db.Add(stored, OutboxEvents.Snapshot(account, [], "deleted", now), accountId, null, now);
            return [];
        }

        var accountChanged = accountEntry?.State == EntityState.Added || added.Count > 0 || removed.Count > 0
            || (accountEntry?.State == EntityState.Modified && Changed(accountEntry, AccountSnapshotProperties));
        if (!accountChanged)
        {
            return current;
        }

        BumpVersion(db.Entry(account));

        if (added.Count > 0 || removed.Count > 0)
        {
            // Each user's version grows, so that what a region receives now supersedes what it held before (a region
            // that left and comes back must accept the snapshots again; one that leaves must accept the deletion).
            var users = await db.Users.Where(u => u.AccountId == accountId).ToListAsync(cancellationToken);
            foreach (var user in users)
            {
                var userEntry = db.Entry(user);
                if (userEntry.State == EntityState.Deleted)
                {
                    continue;
                }

                BumpVersion(userEntry);
                user.RegionCodes = RegionRouting.CodesOf(current);
                handledUsers.Add(user.Id);
                db.Add(current, OutboxEvents.Snapshot(user, now), accountId, user.Id, now);
                db.Add(removed, new UserDeleted { UserId = user.Id, AccountId = accountId, Version = user.Version, DeletedAt = now },
                    accountId, user.Id, now);
            }
        }

        // The account snapshot goes to the regions it left too: without their code in Regions, they forget it.
        db.Add(current.Union(removed), OutboxEvents.Snapshot(account, current, null, now), accountId, null, now);
        return current;
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

    private static bool Changed(EntityEntry entry, string[] properties) =>
        properties.Any(name => entry.Property(name) is var p && !Equals(p.OriginalValue, p.CurrentValue));

    /// <summary>Versions grow on every change a region can see; a caller that already bumped it is left alone.</summary>
    private static void BumpVersion(EntityEntry entry)
    {
        if (entry.State == EntityState.Added)
        {
            return; // a new row starts at its first version
        }

        var version = entry.Property(nameof(ApplicationUser.Version));
        if (Equals(version.OriginalValue, version.CurrentValue))
        {
            version.CurrentValue = (long)version.CurrentValue! + 1;
        }
    }
}
