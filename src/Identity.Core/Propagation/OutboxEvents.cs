using System.Text.Json;
using Identity.Contracts;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Policies;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;

namespace Identity.Core.Propagation;

/// <summary>
/// Turns users and accounts into the event contracts and adds them to the outbox, one row per region the account
/// lives in. Rows are only added to the context: they are written by the caller's SaveChanges, in its transaction.
/// </summary>
public static class OutboxEvents
{
    /// <summary>How payloads are written; the dispatcher reads them back with the same options.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    /// <summary>The contract types by <see cref="OutboxMessage.MessageType"/>.</summary>
    public static readonly IReadOnlyDictionary<string, Type> Types = new[]
    {
        typeof(UserChanged), typeof(UserDeleted), typeof(AccountChanged), typeof(SessionsRevoked),
    }.ToDictionary(t => t.Name, StringComparer.Ordinal);

    public static UserChanged Snapshot(ApplicationUser user, DateTimeOffset now) => new()
    {
        UserId = user.Id,
        AccountId = user.AccountId ?? Guid.Empty,
        Email = user.Email ?? "",
        EmailVerified = user.EmailConfirmed,
        DisplayName = user.DisplayName,
        Role = user.Role ?? AccountRoles.Member,
        Status = user.Status == UserStatus.Disabled ? UserStatuses.Disabled : UserStatuses.Active,
        MfaEnrolled = user.TwoFactorEnabled,
        LockedOutUntil = user.LockoutEnd > now ? user.LockoutEnd : null,
        Version = user.Version,
        ChangedAt = now,
    };

    public static AccountChanged Snapshot(Account account, IReadOnlyList<string> regions, string? status, DateTimeOffset now)
    {
        var policy = AccountPolicy.Parse(account.Settings, out _) ?? new AccountPolicy();
        return new AccountChanged
        {
            AccountId = account.Id,
            Name = account.Name,
            Status = status ?? (account.Status == AccountStatus.Suspended ? "suspended" : "active"),
            Regions = regions,
            MfaRequirement = JsonNamingPolicy.CamelCase.ConvertName(policy.Mfa.Requirement.ToString()),
            SessionLifetime = policy.Session.Lifetime,
            Version = account.Version,
            ChangedAt = now,
        };
    }

    /// <summary>Adds one outbox row per region (held by the running operation, if any: <see cref="Operations.Change.Rows"/>).</summary>
    public static void Add<T>(this AuthorityDbContext db, IEnumerable<string> regions, T message, Guid? accountId, string? userId, DateTimeOffset now)
        where T : class
    {
        var payload = JsonSerializer.Serialize(message, JsonOptions);
        var (traceParent, traceState) = OutboxTrace.Current();
        foreach (var region in regions)
        {
            Operations.ChangeUnit.Record(db, new OutboxMessage
            {
                Region = region,
                MessageType = typeof(T).Name,
                Payload = payload,
                AccountId = accountId,
                UserId = userId,
                CreatedAt = now,
                TraceParent = traceParent,
                TraceState = traceState,
            });
        }
    }

    private static readonly string[] AccountSnapshotProperties = [nameof(Account.Name), nameof(Account.Status), nameof(Account.Settings)];

    // The properties a region sees in UserChanged; a change to any other (password hash, security stamp, failed-attempt
    // counter) is not an event.
    private static readonly string[] UserSnapshotProperties =
    [
        nameof(ApplicationUser.Email), nameof(ApplicationUser.EmailConfirmed), nameof(ApplicationUser.DisplayName), nameof(ApplicationUser.Role),
        nameof(ApplicationUser.Status), nameof(ApplicationUser.TwoFactorEnabled), nameof(ApplicationUser.LockoutEnd),
        nameof(ApplicationUser.AccountId),
    ];

    /// <summary>Whether a region sees this change to the user: new, deleted, or one of its snapshot's properties changed.</summary>
    public static bool IsNews(EntityEntry user) =>
        user.State is EntityState.Added or EntityState.Deleted
        || (user.State == EntityState.Modified && Changed(user, UserSnapshotProperties));

    /// <summary>
    /// Adds what this change to the user (a tracked entry, with its version as it will be saved) means to its regions:
    /// its snapshot, or its deletion; nothing when it is not news (<see cref="IsNews"/>) or the user lives in no region.
    /// </summary>
    /// <param name="always">A snapshot even when none of its properties changed (a credential change the regions must hear of).</param>
    public static async Task AddUserEventAsync(this AuthorityDbContext db, RegionRouting routing, EntityEntry entry, DateTimeOffset now,
        CancellationToken cancellationToken, bool always = false)
    {
        var user = (ApplicationUser)entry.Entity;
        var accountId = entry.State == EntityState.Deleted
            ? entry.Property(nameof(ApplicationUser.AccountId)).OriginalValue as Guid?
            : user.AccountId;
        if (accountId is not { } id || !(IsNews(entry) || (always && entry.State is EntityState.Modified or EntityState.Unchanged)))
        {
            return; // platform administrators live in no region
        }

        var regions = await routing.OfUserAsync(entry, id, cancellationToken);
        if (entry.State == EntityState.Deleted)
        {
            // Newer than any snapshot of the user, so a late UserChanged cannot bring them back.
            db.Add(regions, new UserDeleted { UserId = user.Id, AccountId = id, Version = user.Version + 1, DeletedAt = now }, id, user.Id, now);
            return;
        }

        db.Add(regions, Snapshot(user, now), id, user.Id, now);
    }

    /// <summary>
    /// Tells the user's regions that every session and token of the user was revoked. Call before SaveChanges in the
    /// transaction that revokes them.
    /// </summary>
    public static async Task AddSessionsRevokedAsync(this AuthorityDbContext db, RegionRouting routing, ApplicationUser user, string reason,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (user.AccountId is not { } accountId)
        {
            return;
        }

        var regions = await routing.OfUserAsync(db.Entry(user), accountId, cancellationToken);
        db.Add(regions, new SessionsRevoked { UserId = user.Id, AccountId = accountId, Reason = reason, RevokedAt = now }, accountId, user.Id, now);
    }

    /// <summary>
    /// Adds the account's own events (<paramref name="entries"/>: this SaveChanges' changed entries) and, when its regions
    /// change, its users' arrival or departure there (their versions grow; they are added to
    /// <paramref name="handledUsers"/>); tells <paramref name="routing"/> the regions the account lives in after it.
    /// </summary>
    public static async Task AddAccountEventsAsync(this AuthorityDbContext db, RegionRouting routing, Guid accountId,
        IReadOnlyList<EntityEntry> entries, ISet<string> handledUsers, DateTimeOffset now, CancellationToken cancellationToken) =>
        routing.Moved(accountId, await WriteAccountEventsAsync(db, accountId, entries, handledUsers, now, cancellationToken));

    /// <returns>The regions the account lives in after this change.</returns>
    private static async Task<List<string>> WriteAccountEventsAsync(AuthorityDbContext db, Guid accountId, IReadOnlyList<EntityEntry> entries,
        ISet<string> handledUsers, DateTimeOffset now, CancellationToken cancellationToken)
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
            db.Add(stored, Snapshot(account, [], "deleted", now), accountId, null, now);
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
                db.Add(current, Snapshot(user, now), accountId, user.Id, now);
                db.Add(removed, new UserDeleted { UserId = user.Id, AccountId = accountId, Version = user.Version, DeletedAt = now },
                    accountId, user.Id, now);
            }
        }

        // The account snapshot goes to the regions it left too: without their code in Regions, they forget it.
        db.Add(current.Union(removed), Snapshot(account, current, null, now), accountId, null, now);
        return current;
    }

    /// <summary>Versions grow on every change a region can see; a caller that already bumped it is left alone.</summary>
    public static void BumpVersion(EntityEntry entry)
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

    /// <summary>Whether any of these properties of the entry differs from its value as loaded.</summary>
    public static bool Changed(EntityEntry entry, string[] properties) =>
        properties.Any(name => entry.Property(name) is var p && !Equals(p.OriginalValue, p.CurrentValue));
}
