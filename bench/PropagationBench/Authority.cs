using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Email;
using Identity.Core.Operations;
using Identity.Core.Propagation;
using Identity.Core.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace PropagationBench;

/// <summary>
/// The authority's database as the server uses it: <see cref="AuthorityDbContext"/> from a pool, with the
/// <see cref="OutboxInterceptor"/> registered exactly as <c>Hosting/StoreExtensions.cs</c> does, and the user
/// operations (<see cref="UserOperations"/> with ASP.NET Core Identity's user manager on <see cref="AuthorityUserStore"/>)
/// as the server registers them, so that a change is what <c>PATCH /admin/v1/accounts/{id}/users/{id}</c> runs after
/// its HTTP and authorization work: the operation's unit of work, the version, the outbox rows and the audit entry in
/// one transaction.
/// </summary>
public sealed class Authority : IAsyncDisposable
{
    public const string AccountName = "propagation-bench";

    /// <summary>The actor of the bench's changes, as the admin API records a platform-admin client.</summary>
    private static readonly Actor BenchActor = new("client", "propagation-bench", "propagation-bench", null);

    /// <summary>
    /// The admin API's read of the user a change starts from (<c>UserAdministration.FindAsync</c>): the compiled query of
    /// decision 0096 (<c>UserReads.FindForChangeAsync</c>), found by name; a baseline built before it reads the user with
    /// the LINQ query the admin API used then.
    /// </summary>
    private static readonly Func<AuthorityDbContext, Guid, string, CancellationToken, Task<ApplicationUser?>> FindUser =
        typeof(ApplicationUser).Assembly.GetType("Identity.Core.Users.UserReads")?.GetMethod("FindForChangeAsync")
            ?.CreateDelegate<Func<AuthorityDbContext, Guid, string, CancellationToken, Task<ApplicationUser?>>>()
        ?? ((db, accountId, userId, cancellationToken) => db.Users.SingleOrDefaultAsync(u => u.Id == userId && u.AccountId == accountId, cancellationToken));

    private readonly ServiceProvider _provider;
    private readonly BenchWriter _writer;
    private Guid _accountId;

    /// <param name="observer">Also registered on the context (the write-path loop counts the commands with it).</param>
    public Authority(string connectionString, BenchWriter writer = BenchWriter.Operation, IInterceptor? observer = null)
    {
        _writer = writer;
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<OutboxSignal>();
        services.AddSingleton<OutboxInterceptor>();
        services.AddDbContextPool<AuthorityDbContext>((sp, options) => options
            .UseAuthorityDatabase(DatabaseProvider.PostgreSql, connectionString)
            .AddInterceptors(observer is null ? [sp.GetRequiredService<OutboxInterceptor>()] : [sp.GetRequiredService<OutboxInterceptor>(), observer]));

        // The user operations and what they need (Hosting/StoreExtensions.cs, AdminApiExtensions.cs); the second factors
        // and the emails are the server's own and a profile change without a new address uses neither.
        services.AddIdentityCore<ApplicationUser>(options => options.User.RequireUniqueEmail = true)
            .AddUserStore<AuthorityUserStore>();
        AddUserValidator(services);
        services.AddOpenIddict().AddCore(core => core.UseEntityFrameworkCore().UseDbContext<AuthorityDbContext>());
        services.AddScoped<IAuditTrail, AuditTrail>();
        services.AddScoped<ChangeUnit>();
        services.AddScoped<UserLinks>();
        services.AddScoped<UserOperations>();
        services.AddSingleton<IUserSecondFactors, NoSecondFactors>();
        services.AddSingleton<IAccountEmails, NoEmails>();
        _provider = services.BuildServiceProvider();
    }

    /// <summary>
    /// The user validator the server registers (decision 0092: <c>AddAuthorityUserValidator</c>), found by name: a
    /// baseline built before it (bench/lib.sh publish_baseline) keeps ASP.NET Core Identity's own, as its server did.
    /// </summary>
    private static void AddUserValidator(IServiceCollection services) =>
        typeof(ApplicationUser).Assembly.GetType("Identity.Core.Users.StoredNamesUserValidatorExtensions")
            ?.GetMethod("AddAuthorityUserValidator")?.Invoke(null, [services]);

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
        _accountId = account.Id;
        return await db.Users.AsNoTracking().Where(u => u.AccountId == account.Id).OrderBy(u => u.Email)
            .Select(u => u.Id).Take(count).ToArrayAsync();
    }

    /// <summary>
    /// One commit. <see cref="BenchWriter.Operation"/>: load the user in a fresh context as the admin API does (<see cref="FindUser"/>), then
    /// <see cref="UserOperations.ChangeProfileAsync"/> with the new display name. <see cref="BenchWriter.Direct"/> (the
    /// bench before 2026-12-05): load the users, change the property, SaveChanges — the outbox interceptor's safety net
    /// bumps each version and adds the rows, without an operation, a user manager or an audit entry; several users per
    /// commit are a bulk change in one transaction.
    /// </summary>
    /// <returns>False when a user was changed concurrently (nothing is changed).</returns>
    public async Task<bool> ChangeDisplayNamesAsync(IReadOnlyList<string> userIds, string displayName, CancellationToken cancellationToken)
    {
        await using var scope = _provider.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        if (_writer == BenchWriter.Operation)
        {
            var user = await FindUser(db, _accountId, userIds[0], cancellationToken)
                ?? throw new InvalidOperationException($"No user {userIds[0]} in the bench account.");
            var result = await scope.ServiceProvider.GetRequiredService<UserOperations>()
                .ChangeProfileAsync(user, new ProfileChange(null, displayName, null), BenchActor, cancellationToken);
            return result.Succeeded || (result.Outcome == OperationOutcome.Stale ? false
                : throw new InvalidOperationException($"The profile change was refused: {result.Outcome} {result.Detail}"));
        }

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

/// <summary>How the bench's writers change a user.</summary>
public enum BenchWriter
{
    /// <summary>Through the user operation the admin API's PATCH calls (the default).</summary>
    Operation,

    /// <summary>Straight through the context: the outbox interceptor's safety net writes the events.</summary>
    Direct,
}

/// <summary>The server's second factors are not the bench's: a profile change never calls them.</summary>
internal sealed class NoSecondFactors : IUserSecondFactors
{
    public Task<IReadOnlyList<string>?> ConfirmEnrollmentAsync(ApplicationUser user, string code) => throw new NotSupportedException();

    public Task<IReadOnlyList<string>> RegenerateRecoveryCodesAsync(ApplicationUser user) => throw new NotSupportedException();

    public Task<bool> HasTotpAsync(ApplicationUser user) => throw new NotSupportedException();

    public Task RemoveAllAsync(ApplicationUser user) => throw new NotSupportedException();
}

/// <summary>No mail server: a profile change without a new address sends nothing.</summary>
internal sealed class NoEmails : IAccountEmails
{
    public bool Enabled => false;

    public TimeSpan LifetimeOf(string purpose) => throw new NotSupportedException();

    public void Link(string purpose, ApplicationUser user, string address, string token, DateTimeOffset expiresAt) => throw new NotSupportedException();

    public void EmailChanging(ApplicationUser user, string oldAddress) => throw new NotSupportedException();

    public void PasswordWasReset(ApplicationUser user) => throw new NotSupportedException();

    public void ResetNotAllowed(ApplicationUser user) => throw new NotSupportedException();
}
