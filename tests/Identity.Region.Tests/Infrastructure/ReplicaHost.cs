using Identity.Contracts;
using Identity.Region.Replica;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Identity.Region.Tests.Infrastructure;

/// <summary>
/// A regional host built by the real <see cref="IdentityRegionExtensions.AddIdentityRegion"/>, its replica a SQLite
/// file in a temp folder of its own (a file, so concurrent consumers each have their own connection).
/// </summary>
public sealed class ReplicaHost : IAsyncDisposable
{
    public const string Region = "eu";
    public const string ClientId = "region-eu-sync";
    public const string ClientSecret = "a-test-secret-with+symbols/and:colons";

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "identity-region-tests", Guid.NewGuid().ToString("n"));

    private ReplicaHost(Uri? authority, int pageSize, bool resyncOnStart, Action<IHostApplicationBuilder>? configure, Action<IdentityRegionSetup>? region)
    {
        Directory.CreateDirectory(_directory);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            EnvironmentName = "Testing",
            ContentRootPath = _directory,
        });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["IdentityRegion:Region"] = Region,
            ["IdentityRegion:Authority"] = (authority ?? new Uri("http://127.0.0.1:9/")).AbsoluteUri,
            ["IdentityRegion:ClientId"] = ClientId,
            ["IdentityRegion:ClientSecret"] = ClientSecret,
            // Relative: placed under the content root by AddIdentityRegion.
            ["IdentityRegion:ReplicaConnectionString"] = "Data Source=data/replica.db",
            ["IdentityRegion:ResyncOnStart"] = resyncOnStart ? "true" : "false",
            ["IdentityRegion:PageSize"] = pageSize.ToString(),
        });
        builder.AddIdentityRegion(region);
        configure?.Invoke(builder);
        App = builder.Build();
    }

    public IHost App { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>A host whose replica is migrated, not started (no hosted services run).</summary>
    public static async Task<ReplicaHost> CreateAsync(
        Uri? authority = null, int pageSize = 200, Action<IHostApplicationBuilder>? configure = null, Action<IdentityRegionSetup>? region = null)
    {
        var host = new ReplicaHost(authority, pageSize, resyncOnStart: false, configure, region);
        await host.InScopeAsync(db => db.Database.MigrateAsync());
        return host;
    }

    /// <summary>A host not yet started nor migrated: its start-up does both.</summary>
    public static ReplicaHost CreateUnstarted(Uri authority, bool resyncOnStart) => new(authority, 200, resyncOnStart, null, null);

    /// <summary>Polls until <paramref name="condition"/> holds (events are consumed asynchronously).</summary>
    public async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("Timed out waiting until " + what);
            }

            await Task.Delay(50);
        }
    }

    public Task<ReplicaOutcome> ApplyAsync(UserChanged message) => WithWriterAsync(w => w.ApplyAsync(message));

    public Task<ReplicaOutcome> ApplyAsync(UserDeleted message) => WithWriterAsync(w => w.ApplyAsync(message));

    public Task<ReplicaOutcome> ApplyAsync(AccountChanged message) => WithWriterAsync(w => w.ApplyAsync(message));

    public Task<ReplicaOutcome> ApplyAsync(SessionsRevoked message) => WithWriterAsync(w => w.ApplyAsync(message));

    public Task<ReplicaUser?> UserAsync(string userId) =>
        InScopeAsync(db => db.ReplicaUsers.AsNoTracking().SingleOrDefaultAsync(u => u.UserId == userId));

    public Task<List<ReplicaUser>> LiveUsersAsync() =>
        InScopeAsync(db => db.ReplicaUsers.AsNoTracking().Where(u => !u.Deleted).OrderBy(u => u.UserId).ToListAsync());

    public async Task InScopeAsync(Func<RegionReplicaDbContext, Task> action)
    {
        await using var scope = Services.CreateAsyncScope();
        await action(scope.ServiceProvider.GetRequiredService<RegionReplicaDbContext>());
    }

    public async Task<T> InScopeAsync<T>(Func<RegionReplicaDbContext, Task<T>> action)
    {
        await using var scope = Services.CreateAsyncScope();
        return await action(scope.ServiceProvider.GetRequiredService<RegionReplicaDbContext>());
    }

    public async Task<T> WithWriterAsync<T>(Func<ReplicaWriter, Task<T>> action)
    {
        await using var scope = Services.CreateAsyncScope();
        return await action(scope.ServiceProvider.GetRequiredService<ReplicaWriter>());
    }

    public async ValueTask DisposeAsync()
    {
        if (App is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still open; the temp folder is cleaned by the OS.
        }
    }
}

/// <summary>Events as Identity would send them.</summary>
public static class Events
{
    public static readonly Guid Account = Guid.Parse("6f1c7a52-0c1e-4d4a-9b7e-2f6c3b1a0e01");
    public static readonly Guid OtherAccount = Guid.Parse("6f1c7a52-0c1e-4d4a-9b7e-2f6c3b1a0e02");

    public static UserChanged User(string userId, long version, Guid? account = null, string? email = null) => new()
    {
        UserId = userId,
        AccountId = account ?? Account,
        Email = email ?? $"{userId}.v{version}@example.test",
        DisplayName = $"{userId} v{version}",
        Role = "member",
        Status = UserStatuses.Active,
        MfaEnrolled = false,
        Version = version,
        ChangedAt = DateTimeOffset.UtcNow,
    };

    public static UserDeleted Deleted(string userId, long version, Guid? account = null) => new()
    {
        UserId = userId,
        AccountId = account ?? Account,
        Version = version,
        DeletedAt = DateTimeOffset.UtcNow,
    };

    public static AccountChanged AccountIn(long version, Guid? account = null, params string[] regions) => new()
    {
        AccountId = account ?? Account,
        Name = "Contoso",
        Status = "active",
        Regions = regions,
        MfaRequirement = "optional",
        Version = version,
        ChangedAt = DateTimeOffset.UtcNow,
    };

    public static SessionsRevoked Revoked(string userId, DateTimeOffset at) => new()
    {
        UserId = userId,
        AccountId = Account,
        Reason = "admin",
        RevokedAt = at,
    };
}
