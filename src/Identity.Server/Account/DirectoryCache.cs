using System.Runtime.CompilerServices;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Policies;
using Identity.Server.Connect;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// This replica's copies of the users and accounts the sign-in path reads on every round trip (the session's user, the
/// account's status, policy and name): the SSO round trip and the refresh read them from here instead of the database
/// (issue 18: about ten statements per round trip before, decision 0066).
/// <para>
/// A copy is trusted for <see cref="OidcOptions.UserCacheDuration"/> at most, on every replica: a user disabled, an
/// account suspended or a policy changed at another replica is honoured here within that window. A change made through
/// this replica's database context (every user and account operation, the admin API, lockout) evicts its copies at once
/// (<see cref="DirectoryCacheEviction"/>), so this replica never serves a copy older than its own last change. Only
/// found rows are kept: a user created anywhere signs in at once.
/// </para>
/// </summary>
public sealed class DirectoryCache(IOptionsMonitor<OidcOptions> options, ILogger<DirectoryCache> logger) : IDisposable
{
    private readonly MemoryCache _entries = new(new MemoryCacheOptions { SizeLimit = 100_000 });

    // Raised by every eviction: a copy read from the database before an eviction is not kept after it, so a read racing
    // a local change cannot put the older row back for a whole window.
    private long _evictions;

    /// <summary>The user's row as a detached copy of its own (the caller may not save it), or <c>null</c> when none has this id.</summary>
    public async ValueTask<ApplicationUser?> UserAsync(AuthorityDbContext db, string? userId, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(userId))
        {
            return null;
        }

        if (_entries.TryGetValue(new UserKey(userId), out ApplicationUser? cached) && cached is not null)
        {
            return Copy(cached);
        }

        var evictions = Interlocked.Read(ref _evictions);
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == userId, cancellationToken);
        if (user is not null)
        {
            Keep(new UserKey(userId), user, evictions);
            return Copy(user);
        }

        return null;
    }

    /// <summary>The account's status, name and policy (unreadable settings: the defaults, logged), or <c>null</c> when there is no such account.</summary>
    public async ValueTask<AccountSnapshot?> AccountAsync(AuthorityDbContext db, Guid accountId, CancellationToken cancellationToken)
    {
        if (_entries.TryGetValue(new AccountKey(accountId), out AccountSnapshot? cached) && cached is not null)
        {
            return cached;
        }

        var evictions = Interlocked.Read(ref _evictions);
        var row = await db.Accounts.AsNoTracking().Where(a => a.Id == accountId)
            .Select(a => new { a.Status, a.Name, a.Settings }).SingleOrDefaultAsync(cancellationToken);
        if (row is null)
        {
            return null;
        }

        var snapshot = new AccountSnapshot(row.Status, row.Name, PolicyOf(accountId, row.Settings));
        Keep(new AccountKey(accountId), snapshot, evictions);
        return snapshot;
    }

    /// <summary>Forgets the copies of these users and accounts: the next read goes to the database.</summary>
    public void Evict(IEnumerable<string> userIds, IEnumerable<Guid> accountIds)
    {
        Interlocked.Increment(ref _evictions);
        foreach (var id in userIds)
        {
            _entries.Remove(new UserKey(id));
        }

        foreach (var id in accountIds)
        {
            _entries.Remove(new AccountKey(id));
        }
    }

    public void Dispose() => _entries.Dispose();

    private void Keep(object key, object value, long evictionsBeforeRead)
    {
        var window = options.CurrentValue.UserCacheDuration;
        if (window <= TimeSpan.Zero)
        {
            return;
        }

        using (var entry = _entries.CreateEntry(key))
        {
            entry.Value = value;
            entry.Size = 1;
            entry.AbsoluteExpirationRelativeToNow = window;
        }

        if (Interlocked.Read(ref _evictions) != evictionsBeforeRead)
        {
            _entries.Remove(key); // an eviction ran while the row was read: it may be older than that change
        }
    }

    private AccountPolicy PolicyOf(Guid accountId, string settings)
    {
        if (string.IsNullOrEmpty(settings) || settings == "{}")
        {
            return AccountPolicy.Default;
        }

        var policy = AccountPolicy.Parse(settings, out var errors);
        if (policy is null)
        {
            // Stored before settings were validated as a policy: fall back to the defaults and say so.
            logger.LogWarning("Account {AccountId} has unreadable settings ({Fields}); using defaults", accountId, string.Join(", ", errors.Keys));
            return AccountPolicy.Default;
        }

        return policy;
    }

    // One shallow copy (its fields are strings and values), not a property-by-property copy through reflection.
    private static ApplicationUser Copy(ApplicationUser user) => user.DetachedCopy();

    private sealed record UserKey(string Id);

    private sealed record AccountKey(Guid Id);
}

/// <summary>What the sign-in path needs of an account: whether its users may sign in, its name (the ID token's <c>account</c> claim), its policy.</summary>
public sealed record AccountSnapshot(AccountStatus Status, string Name, AccountPolicy Policy);

/// <summary>
/// Evicts the <see cref="DirectoryCache"/> copies of the users and accounts a <c>SaveChanges</c> of this replica adds,
/// changes or deletes, once it committed or failed (and before it runs, so no read in between keeps the old row).
/// </summary>
public sealed class DirectoryCacheEviction(DirectoryCache cache) : SaveChangesInterceptor
{
    private readonly ConditionalWeakTable<DbContext, Changed> _pending = [];

    public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        Collect(eventData.Context);
        return result;
    }

    public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        Collect(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public override int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        Release(eventData.Context);
        return result;
    }

    public override ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        Release(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public override void SaveChangesFailed(DbContextErrorEventData eventData) => Release(eventData.Context);

    public override Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        Release(eventData.Context);
        return Task.CompletedTask;
    }

    private void Collect(DbContext? context)
    {
        if (context is null)
        {
            return;
        }

        var changed = new Changed();
        foreach (var entry in context.ChangeTracker.Entries())
        {
            if (entry.State is EntityState.Unchanged or EntityState.Detached)
            {
                continue;
            }

            switch (entry.Entity)
            {
                case ApplicationUser user:
                    changed.Users.Add(user.Id);
                    break;
                case Core.Accounts.Account account:
                    changed.Accounts.Add(account.Id);
                    break;
            }
        }

        if (changed.Users.Count > 0 || changed.Accounts.Count > 0)
        {
            cache.Evict(changed.Users, changed.Accounts);
            _pending.AddOrUpdate(context, changed);
        }
    }

    private void Release(DbContext? context)
    {
        if (context is not null && _pending.TryGetValue(context, out var changed))
        {
            _pending.Remove(context);
            cache.Evict(changed.Users, changed.Accounts);
        }
    }

    private sealed class Changed
    {
        public HashSet<string> Users { get; } = new(StringComparer.Ordinal);

        public HashSet<Guid> Accounts { get; } = [];
    }
}
