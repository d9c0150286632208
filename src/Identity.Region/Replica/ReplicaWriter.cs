using System.Data;
using System.Data.Common;
using Identity.Contracts;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Identity.Region.Replica;

/// <summary>What <see cref="ReplicaWriter"/> did with a message.</summary>
public enum ReplicaOutcome
{
    /// <summary>The replica now reflects the message.</summary>
    Applied,

    /// <summary>The replica already held the same or a newer state (a duplicate or a late delivery).</summary>
    Ignored,
}

/// <summary>
/// The replica's rules: a snapshot is applied only if its version is newer than the stored one, so duplicates and
/// out-of-order deliveries are harmless. Safe for concurrent consumers: a single event is one conditional statement
/// (<c>UPDATE … WHERE Version &lt; @new</c>), and a first insert that loses a race on the primary key is retried as
/// an update; a batch is one serializable transaction, retried whole on a conflict — whichever order two versions
/// arrive in, the higher one is what stays.
/// </summary>
public sealed class ReplicaWriter(RegionReplicaDbContext db, IOptions<IdentityRegionOptions> options, TimeProvider time)
{
    // An insert can lose the race only to another insert of the same key; after that the row exists and the
    // conditional update decides. Two attempts are enough; the rest is headroom.
    private const int Attempts = 5;

    private string Region => options.Value.Region;

    private DateTime Now => time.GetUtcNow().UtcDateTime;

    public async Task<ReplicaOutcome> ApplyAsync(UserChanged user, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        return (await ApplyAsync([user], cancellationToken))[0];
    }

    /// <summary>
    /// Applies many snapshots in one transaction: one read of the stored versions and of the accounts away from the
    /// region, then one batch of writes and one commit (a page of a resync, or a batch of events). Of several snapshots
    /// of the same user, only the newest counts. The transaction is serializable (SQLite: <c>BEGIN IMMEDIATE</c>), so
    /// nothing can change a row between its read and its write; a conflict on a server database fails the whole batch,
    /// which is then retried from the start (applying a snapshot twice changes nothing).
    /// </summary>
    /// <returns>For each snapshot, in order, whether it is now what the replica holds.</returns>
    public Task<IReadOnlyList<ReplicaOutcome>> ApplyAsync(IReadOnlyList<UserChanged> users, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(users);
        if (users.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<ReplicaOutcome>>([]);
        }

        var newest = new Dictionary<string, UserChanged>(StringComparer.Ordinal);
        foreach (var user in users)
        {
            ArgumentNullException.ThrowIfNull(user);
            if (!newest.TryGetValue(user.UserId, out var seen) || seen.Version < user.Version)
            {
                newest[user.UserId] = user;
            }
        }

        return InTransactionAsync<IReadOnlyList<ReplicaOutcome>>(async () =>
        {
            var userIds = newest.Keys.ToList();
            var accountIds = newest.Values.Select(u => u.AccountId).Distinct().ToList();
            // A snapshot of a user whose account is known to have left the region is not for us (it was sent before
            // the account left, and arrived after).
            var away = (await db.ReplicaAccounts
                .Where(a => accountIds.Contains(a.AccountId) && !a.InRegion)
                .Select(a => a.AccountId)
                .ToListAsync(cancellationToken)).ToHashSet();
            var stored = await db.ReplicaUsers
                .Where(u => userIds.Contains(u.UserId))
                .ToDictionaryAsync(u => u.UserId, StringComparer.Ordinal, cancellationToken);

            var now = Now;
            var applied = new HashSet<UserChanged>(ReferenceEqualityComparer.Instance);
            foreach (var user in newest.Values)
            {
                if (away.Contains(user.AccountId))
                {
                    continue;
                }

                if (stored.TryGetValue(user.UserId, out var row))
                {
                    // Newer, or the same state again once the account is back in the region.
                    if (!(row.Version < user.Version || (row.DeletedWithAccount && row.Version <= user.Version)))
                    {
                        continue;
                    }
                }
                else
                {
                    row = new ReplicaUser { UserId = user.UserId };
                    db.ReplicaUsers.Add(row);
                }

                row.AccountId = user.AccountId;
                row.Email = user.Email;
                row.DisplayName = user.DisplayName;
                row.Role = user.Role;
                row.Status = user.Status;
                row.MfaEnrolled = user.MfaEnrolled;
                row.Version = user.Version;
                row.Deleted = false;
                row.DeletedWithAccount = false;
                row.UpdatedAt = now;
                applied.Add(user);
            }

            await db.SaveChangesAsync(cancellationToken);
            return users.Select(u => applied.Contains(u) ? ReplicaOutcome.Applied : ReplicaOutcome.Ignored).ToList();
        }, cancellationToken);
    }

    /// <summary>
    /// Applies several events of one kind in one transaction, each by its own rule (<paramref name="apply"/>, one of
    /// the single-event methods): one commit instead of one per event. A conflict retries the whole batch.
    /// </summary>
    public Task<IReadOnlyList<ReplicaOutcome>> ApplyAllAsync<TEvent>(
        IReadOnlyList<TEvent> events, Func<TEvent, CancellationToken, Task<ReplicaOutcome>> apply, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(apply);
        return InTransactionAsync<IReadOnlyList<ReplicaOutcome>>(async () =>
        {
            var outcomes = new List<ReplicaOutcome>(events.Count);
            foreach (var item in events)
            {
                outcomes.Add(await apply(item, cancellationToken));
            }

            return outcomes;
        }, cancellationToken);
    }

    /// <summary>Leaves a tombstone carrying the deletion's version, with the personal data erased.</summary>
    public Task<ReplicaOutcome> ApplyAsync(UserDeleted deleted, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(deleted);
        return UpsertAsync(
            update: now => Tombstone(db.ReplicaUsers.Where(u => u.UserId == deleted.UserId && u.Version < deleted.Version),
                now, withAccount: false, version: deleted.Version, cancellationToken),
            exists: () => db.ReplicaUsers.AnyAsync(u => u.UserId == deleted.UserId, cancellationToken),
            insert: now => db.ReplicaUsers.Add(new ReplicaUser
            {
                UserId = deleted.UserId,
                AccountId = deleted.AccountId,
                Version = deleted.Version,
                Deleted = true,
                UpdatedAt = now,
            }),
            cancellationToken);
    }

    /// <summary>
    /// Stores the account if the snapshot is newer; when the account no longer lists this region, the region forgets
    /// it: every user of the account becomes a tombstone (and later snapshots of them are ignored while it is away).
    /// </summary>
    public async Task<ReplicaOutcome> ApplyAsync(AccountChanged account, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(account);
        var regions = string.Join(',', account.Regions);
        var inRegion = account.Regions.Contains(Region, StringComparer.OrdinalIgnoreCase);

        var outcome = await UpsertAsync(
            update: now => db.ReplicaAccounts
                .Where(a => a.AccountId == account.AccountId && a.Version < account.Version)
                .ExecuteUpdateAsync(set => set
                    .SetProperty(a => a.Name, account.Name)
                    .SetProperty(a => a.Status, account.Status)
                    .SetProperty(a => a.Regions, regions)
                    .SetProperty(a => a.InRegion, inRegion)
                    .SetProperty(a => a.MfaRequirement, account.MfaRequirement)
                    .SetProperty(a => a.SessionLifetime, account.SessionLifetime)
                    .SetProperty(a => a.Version, account.Version)
                    .SetProperty(a => a.UpdatedAt, now), cancellationToken),
            exists: () => db.ReplicaAccounts.AnyAsync(a => a.AccountId == account.AccountId, cancellationToken),
            insert: now => db.ReplicaAccounts.Add(new ReplicaAccount
            {
                AccountId = account.AccountId,
                Name = account.Name,
                Status = account.Status,
                Regions = regions,
                InRegion = inRegion,
                MfaRequirement = account.MfaRequirement,
                SessionLifetime = account.SessionLifetime,
                Version = account.Version,
                UpdatedAt = now,
            }),
            cancellationToken);

        if (outcome == ReplicaOutcome.Applied && !inRegion)
        {
            // Each tombstone keeps its user's version: the user was not deleted, so no newer version exists.
            await Tombstone(db.ReplicaUsers.Where(u => u.AccountId == account.AccountId && !u.Deleted),
                Now, withAccount: true, version: null, cancellationToken);
        }

        return outcome;
    }

    /// <summary>Records the latest revocation time; a regional app refuses sessions opened before it.</summary>
    public Task<ReplicaOutcome> ApplyAsync(SessionsRevoked revoked, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(revoked);
        var revokedAt = revoked.RevokedAt.UtcDateTime;
        return UpsertAsync(
            update: now => db.ReplicaUsers
                .Where(u => u.UserId == revoked.UserId && (u.SessionsRevokedAt == null || u.SessionsRevokedAt < revokedAt))
                .ExecuteUpdateAsync(set => set
                    .SetProperty(u => u.SessionsRevokedAt, revokedAt)
                    .SetProperty(u => u.UpdatedAt, now), cancellationToken),
            exists: () => db.ReplicaUsers.AnyAsync(u => u.UserId == revoked.UserId, cancellationToken),
            // Arrived before the user's first snapshot: keep the time in a version-0 placeholder (Identity's versions
            // start at 1), hidden like a tombstone until the snapshot fills it in.
            insert: now => db.ReplicaUsers.Add(new ReplicaUser
            {
                UserId = revoked.UserId,
                AccountId = revoked.AccountId,
                Version = 0,
                Deleted = true,
                SessionsRevokedAt = revokedAt,
                UpdatedAt = now,
            }),
            cancellationToken);
    }

    /// <summary>
    /// Tombstones the live user at <paramref name="version"/> if it is still there; the resync's removal of users
    /// absent from Identity.
    /// </summary>
    public async Task<bool> TombstoneAbsentAsync(string userId, long version, DateTime unchangedSince, CancellationToken cancellationToken = default)
    {
        var tombstoned = await Tombstone(
            db.ReplicaUsers.Where(u => u.UserId == userId && !u.Deleted && u.Version == version && u.UpdatedAt < unchangedSince),
            Now, withAccount: false, version: null, cancellationToken);
        return tombstoned > 0;
    }

    private static Task<int> Tombstone(IQueryable<ReplicaUser> users, DateTime now, bool withAccount, long? version, CancellationToken cancellationToken) =>
        users.ExecuteUpdateAsync(set =>
        {
            set.SetProperty(u => u.Deleted, true)
                .SetProperty(u => u.DeletedWithAccount, withAccount)
                .SetProperty(u => u.Email, "")
                .SetProperty(u => u.DisplayName, (string?)null)
                .SetProperty(u => u.Role, "")
                .SetProperty(u => u.Status, "")
                .SetProperty(u => u.MfaEnrolled, false)
                .SetProperty(u => u.UpdatedAt, now);
            if (version is { } newVersion)
            {
                set.SetProperty(u => u.Version, newVersion);
            }
        }, cancellationToken);

    /// <summary>
    /// Runs <paramref name="work"/> in a serializable transaction, under the provider's execution strategy; a write
    /// conflict (a key inserted by another consumer first, a serialization failure) runs it again from a clean change
    /// tracker, up to <see cref="Attempts"/> times.
    /// </summary>
    private async Task<T> InTransactionAsync<T>(Func<Task<T>> work, CancellationToken cancellationToken)
    {
        if (db.Database.CurrentTransaction is not null)
        {
            return await work();
        }

        var strategy = db.Database.CreateExecutionStrategy();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await strategy.ExecuteAsync(async ct =>
                {
                    db.ChangeTracker.Clear();
                    await using var transaction = await db.Database.BeginTransactionAsync(IsolationLevel.Serializable, ct);
                    var result = await work();
                    await transaction.CommitAsync(ct);
                    return result;
                }, cancellationToken);
            }
            catch (Exception exception) when (attempt < Attempts && exception is DbUpdateException or DbException
                && !cancellationToken.IsCancellationRequested)
            {
                // Lost a race to another writer: the next attempt reads what it wrote.
            }
            finally
            {
                db.ChangeTracker.Clear();
            }
        }
    }

    /// <summary>Conditional update; else, if there is no row yet, insert; an insert that lost a race is retried.</summary>
    private async Task<ReplicaOutcome> UpsertAsync(
        Func<DateTime, Task<int>> update,
        Func<Task<bool>> exists,
        Action<DateTime> insert,
        CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (await update(Now) > 0)
            {
                return ReplicaOutcome.Applied;
            }

            if (await exists())
            {
                return ReplicaOutcome.Ignored;
            }

            insert(Now);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                return ReplicaOutcome.Applied;
            }
            catch (DbUpdateException) when (attempt < Attempts)
            {
                // Another consumer may have inserted the same key first: then the conditional update decides.
                db.ChangeTracker.Clear();
                if (!await exists())
                {
                    throw;
                }
            }
            finally
            {
                db.ChangeTracker.Clear();
            }
        }
    }
}
