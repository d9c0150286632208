using System.Data.Common;
using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Propagation;
using Identity.Core.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Core.UnitTests.Operations;

/// <summary>
/// The operations on their real parts, without the server: the authority's context on an SQLite database, ASP.NET Core
/// Identity's EF Core stores, OpenIddict's managers on the same context, the outbox interceptor — and a counter of the
/// SaveChanges and transactions each operation costs.
/// </summary>
public sealed class OperationHost : IAsyncDisposable
{
    private readonly SqliteConnection _connection = new("Data Source=:memory:");
    private readonly ServiceProvider _services;

    public OperationHost(OutsideChangeMode outside = OutsideChangeMode.Fail)
    {
        _connection.Open();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<Microsoft.AspNetCore.DataProtection.IDataProtectionProvider>(new Microsoft.AspNetCore.DataProtection.EphemeralDataProtectionProvider());
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<OutboxSignal>();
        services.AddSingleton(s => new ChangesOutsideOperations(outside, s.GetRequiredService<ILogger<ChangesOutsideOperations>>()));
        services.AddSingleton<OutboxInterceptor>();
        services.AddSingleton(Writes);
        services.AddDbContext<AuthorityDbContext>((s, o) => o.UseSqlite(_connection)
            .AddInterceptors(s.GetRequiredService<OutboxInterceptor>(), s.GetRequiredService<WriteCounter>()));
        services.AddIdentityCore<ApplicationUser>(o =>
            {
                o.User.RequireUniqueEmail = true; // as the server (Hosting/StoreExtensions.cs)
                DesignTimeServices.ConfigureIdentityStore(o.Stores);
            })
            .AddUserStore<AuthorityUserStore>()
            .AddEntityFrameworkStores<AuthorityDbContext>()
            .AddDefaultTokenProviders();
        services.AddAuthorityUserValidator();
        services.AddOpenIddict().AddCore(o => o.UseEntityFrameworkCore().UseDbContext<AuthorityDbContext>());
        services.AddScoped<IAuditTrail, AuditTrail>();
        services.AddScoped<ChangeUnit>();
        services.AddScoped<UserOperations>();
        services.AddScoped<UserLinks>();
        services.AddScoped<UserLinkOperations>();
        services.AddScoped<Identity.Core.Email.OutgoingEmail>();
        services.AddScoped<Identity.Core.Email.IAccountEmails, TestAccountEmails>();
        services.AddScoped<AccountOperations>();
        services.AddScoped<UserLockout>();
        services.AddScoped<SecondFactorEnrolment>();
        services.AddScoped<IUserSecondFactors, TestSecondFactors>();
        _services = services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true, ValidateOnBuild = true });
        using var scope = _services.CreateScope();
        scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Database.EnsureCreated();
    }

    public WriteCounter Writes { get; } = new();

    public static Actor Admin { get; } = new("user", "admin-1", "admin-client", "192.0.2.1");

    public AsyncServiceScope Scope() => _services.CreateAsyncScope();

    /// <summary>An account living in <paramref name="regions"/>, written without the outbox (arrangement, not a change under test).</summary>
    public async Task<Guid> AccountAsync(params string[] regions)
    {
        await using var db = PlainContext();
        var account = new Account { Id = Guid.NewGuid(), Name = "Account " + Guid.NewGuid().ToString("n")[..6] };
        foreach (var code in regions)
        {
            if (await db.Regions.FindAsync(code) is null)
            {
                db.Regions.Add(new Region { Code = code, DisplayName = code });
            }

            account.Regions.Add(new AccountRegion { RegionCode = code });
        }

        db.Accounts.Add(account);
        await db.SaveChangesAsync();
        return account.Id;
    }

    /// <summary>A user of the account, with one stored refresh token and one authorization, written without the outbox.</summary>
    public async Task<string> UserAsync(Guid accountId, string role, UserStatus status = UserStatus.Active)
    {
        await using var db = PlainContext();
        var email = $"{role}-{Guid.NewGuid():n}@example.test";
        var user = new ApplicationUser
        {
            UserName = email, NormalizedUserName = email.ToUpperInvariant(), Email = email, NormalizedEmail = email.ToUpperInvariant(),
            AccountId = accountId, Role = role, Status = status, SecurityStamp = Guid.NewGuid().ToString("n"),
        };
        var application = new OpenIddictEntityFrameworkCoreApplication { ClientId = "app-" + Guid.NewGuid().ToString("n") };
        var authorization = new OpenIddictEntityFrameworkCoreAuthorization { Application = application, Subject = user.Id, Status = "valid", Type = "permanent" };
        db.Users.Add(user);
        db.Add(application);
        db.Add(authorization);
        db.Add(new OpenIddictEntityFrameworkCoreToken { Application = application, Authorization = authorization, Subject = user.Id, Status = "valid", Type = "refresh_token" });
        await db.SaveChangesAsync();
        return user.Id;
    }

    /// <summary>A context on the same database with no interceptor: to arrange, and to read what was written.</summary>
    public AuthorityDbContext PlainContext() => new(new DbContextOptionsBuilder<AuthorityDbContext>().UseSqlite(_connection).Options);

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _connection.DisposeAsync();
    }
}

/// <summary>Counts the SaveChanges calls and the transactions begun on the contexts it is added to.</summary>
public sealed class WriteCounter : SaveChangesInterceptor, IDbTransactionInterceptor
{
    public int SaveChanges { get; private set; }

    public int Transactions { get; private set; }

    public void Reset() => (SaveChanges, Transactions) = (0, 0);

    public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        SaveChanges++;
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        SaveChanges++;
        return result;
    }

    public ValueTask<InterceptionResult<DbTransaction>> TransactionStartingAsync(DbConnection connection, TransactionStartingEventData eventData,
        InterceptionResult<DbTransaction> result, CancellationToken cancellationToken = default)
    {
        Transactions++;
        return ValueTask.FromResult(result);
    }

    public InterceptionResult<DbTransaction> TransactionStarting(DbConnection connection, TransactionStartingEventData eventData,
        InterceptionResult<DbTransaction> result)
    {
        Transactions++;
        return result;
    }
}

/// <summary>
/// The server keeps authenticator secrets protected by its ring; here an authenticator is a plain user token, confirmed
/// by <see cref="ValidCode"/>, written through the user manager as the server's are (so the operation saves them).
/// </summary>
internal sealed class TestSecondFactors(UserManager<ApplicationUser> users) : IUserSecondFactors
{
    public const string ValidCode = "123456";
    private const string Provider = "[Test]";

    public async Task<IReadOnlyList<string>?> ConfirmEnrollmentAsync(ApplicationUser user, string code)
    {
        if (code != ValidCode)
        {
            return null;
        }

        await users.SetAuthenticationTokenAsync(user, Provider, "TotpSecret", "secret");
        await users.SetTwoFactorEnabledAsync(user, true);
        return await RegenerateRecoveryCodesAsync(user);
    }

    public async Task<IReadOnlyList<string>> RegenerateRecoveryCodesAsync(ApplicationUser user)
    {
        string[] codes = [Guid.NewGuid().ToString("n")[..10], Guid.NewGuid().ToString("n")[..10]];
        await users.SetAuthenticationTokenAsync(user, Provider, "RecoveryCodes", string.Join(',', codes));
        return codes;
    }

    public async Task<bool> HasTotpAsync(ApplicationUser user) => await users.GetAuthenticationTokenAsync(user, Provider, "TotpSecret") is not null;

    public async Task RemoveAllAsync(ApplicationUser user)
    {
        await users.RemoveAuthenticationTokenAsync(user, Provider, "TotpSecret");
        await users.RemoveAuthenticationTokenAsync(user, Provider, "RecoveryCodes");
        await users.SetTwoFactorEnabledAsync(user, false);
    }
}

/// <summary>
/// The server renders its emails with its templates; here each is a line naming its kind and, for a link, its token,
/// queued through the real <see cref="Identity.Core.Email.OutgoingEmail"/> (so the operation's write includes it).
/// </summary>
internal sealed class TestAccountEmails(Identity.Core.Email.OutgoingEmail outgoing) : Identity.Core.Email.IAccountEmails
{
    public bool Enabled => true;

    public TimeSpan LifetimeOf(string purpose) => TimeSpan.FromMinutes(30);

    public void Link(string purpose, ApplicationUser user, string address, string token, DateTimeOffset expiresAt) =>
        Queue(address, purpose, user, token);

    public void EmailChanging(ApplicationUser user, string oldAddress) => Queue(oldAddress, "email_change_notice", user, "");

    public void PasswordWasReset(ApplicationUser user) => Queue(user.Email!, "password_reset_notice", user, "");

    public void ResetNotAllowed(ApplicationUser user) => Queue(user.Email!, "password_reset_not_allowed", user, "");

    private void Queue(string to, string kind, ApplicationUser user, string token) =>
        outgoing.Queue(to, kind, user.Id, new Identity.Core.Email.EmailContent(kind, $"{kind} {token}", $"<p>{kind} {token}</p>"));
}
