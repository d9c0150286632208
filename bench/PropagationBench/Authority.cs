using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace PropagationBench;

/// <summary>
/// The authority's database as the server uses it: <see cref="AuthorityDbContext"/> from a pool, with the
/// <see cref="OutboxInterceptor"/> registered exactly as <c>Hosting/StoreExtensions.cs</c> does, so every change the
/// bench makes goes through the real writer path (the UserChanged rows are written in the change's transaction).
/// </summary>
public sealed class Authority : IAsyncDisposable
{
    public const string AccountName = "propagation-bench";

    private readonly ServiceProvider _provider;

    public Authority(string connectionString)
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<OutboxSignal>();
        services.AddSingleton<OutboxInterceptor>();
        services.AddDbContextPool<AuthorityDbContext>((sp, options) => options
            .UseAuthorityDatabase(DatabaseProvider.PostgreSql, connectionString)
            .AddInterceptors(sp.GetRequiredService<OutboxInterceptor>()));
        _provider = services.BuildServiceProvider();
    }

    /// <summary>
    /// The regions, one account living in all of them and its <paramref name="count"/> users (created if missing; run
    /// after the server migrated the database). The regions fetch this state by their initial resync.
    /// </summary>
    /// <returns>The users' ids, in a stable order.</returns>
    public async Task<string[]> SeedAsync(IReadOnlyList<string> regions, int count)
    {
        await using var scope = _provider.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var now = DateTimeOffset.UtcNow;
        foreach (var code in regions)
        {
            if (!await db.Regions.AnyAsync(r => r.Code == code))
            {
                db.Regions.Add(new Region { Code = code, DisplayName = "Bench " + code });
            }
        }

        var account = await db.Accounts.Include(a => a.Regions).SingleOrDefaultAsync(a => a.Name == AccountName);
        if (account is null)
        {
            account = new Account { Id = Guid.NewGuid(), Name = AccountName, CreatedAt = now, UpdatedAt = now };
            db.Accounts.Add(account);
        }

        foreach (var code in regions.Where(code => account.Regions.All(r => r.RegionCode != code)))
        {
            account.Regions.Add(new AccountRegion { AccountId = account.Id, RegionCode = code });
        }

        var existing = await db.Users.CountAsync(u => u.AccountId == account.Id);
        for (var i = existing; i < count; i++)
        {
            var email = $"user{i:D5}@propagation-bench.test";
            db.Users.Add(new ApplicationUser
            {
                UserName = email,
                NormalizedUserName = email.ToUpperInvariant(),
                Email = email,
                NormalizedEmail = email.ToUpperInvariant(),
                EmailConfirmed = true,
                SecurityStamp = Guid.NewGuid().ToString("N"),
                DisplayName = $"Bench user {i}",
                AccountId = account.Id,
                Role = AccountRoles.Member,
                CreatedAt = now,
            });
        }

        await db.SaveChangesAsync();
        return await db.Users.AsNoTracking().Where(u => u.AccountId == account.Id).OrderBy(u => u.Email)
            .Select(u => u.Id).Take(count).ToArrayAsync();
    }

    /// <summary>
    /// One commit, as any code path of the server makes it: load the users in a fresh context, change a property a region
    /// sees, save (the interceptor bumps each version and adds one UserChanged row per user and region). One user per
    /// commit is a single change; several are a bulk change in one transaction.
    /// </summary>
    /// <returns>False when a user was changed concurrently (nothing is changed).</returns>
    public async Task<bool> ChangeDisplayNamesAsync(IReadOnlyList<string> userIds, string displayName, CancellationToken cancellationToken)
    {
        await using var scope = _provider.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var users = userIds.Count == 1
            ? [await db.Users.SingleAsync(u => u.Id == userIds[0], cancellationToken)]
            : await db.Users.Where(u => userIds.Contains(u.Id)).ToListAsync(cancellationToken);
        foreach (var user in users)
        {
            user.DisplayName = displayName;
            user.ConcurrencyStamp = Guid.NewGuid().ToString(); // as UserManager.UpdateAsync does: a racing write fails
        }

        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateConcurrencyException)
        {
            return false;
        }
    }

    /// <summary>The authority's current version and display name of every user of the bench account.</summary>
    public async Task<Dictionary<string, (long Version, string? DisplayName)>> UsersAsync()
    {
        await using var scope = _provider.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return await db.Users.AsNoTracking().Where(u => u.Account!.Name == AccountName)
            .ToDictionaryAsync(u => u.Id, u => (u.Version, u.DisplayName));
    }

    /// <summary>Outbox rows not yet published (all regions).</summary>
    public async Task<int> PendingAsync()
    {
        await using var scope = _provider.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return await db.Outbox.CountAsync(m => m.SentAt == null);
    }

    public ValueTask DisposeAsync() => _provider.DisposeAsync();
}
