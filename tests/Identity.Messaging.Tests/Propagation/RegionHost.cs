using Identity.Region;
using Identity.Region.Replica;
using Identity.Region.Resync;
using Identity.Region.Tokens;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Identity.Messaging.Tests.Propagation;

/// <summary>
/// A regional service as a region would run it: <c>AddIdentityRegion()</c> with its replica in its own SQLite file,
/// consuming its queue on the broker as <c>region-&lt;r&gt;</c>, resyncing over HTTP from the authority.
/// </summary>
public sealed class RegionHost : IAsyncDisposable
{
    private readonly IHost _host;

    private RegionHost(string region, IHost host)
    {
        Region = region;
        _host = host;
    }

    public string Region { get; }

    public static async Task<RegionHost> StartAsync(string region, BrokerFixture broker, AuthorityHost authority, string clientSecret,
        string folder)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Testing", ContentRootPath = folder });
        var options = broker.OptionsFor("region-" + region);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["IdentityRegion:Region"] = region,
            ["IdentityRegion:Authority"] = "http://localhost/",
            ["IdentityRegion:ClientId"] = "region-" + region,
            ["IdentityRegion:ClientSecret"] = clientSecret,
            ["IdentityRegion:ReplicaConnectionString"] = $"Data Source={Path.Combine(folder, $"replica-{region}.db")}",
            ["IdentityRegion:ResyncOnStart"] = "false",
            ["Broker:Host"] = options.Host,
            ["Broker:Port"] = options.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker:ServerName"] = options.ServerName,
            ["Broker:CaCertificatePath"] = options.CaCertificatePath,
            ["Broker:ClientCertificatePath"] = options.ClientCertificatePath,
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.AddIdentityRegion();
        // The sync API is served by the in-process authority, not a socket.
        builder.Services.AddHttpClient<IReplicaResync, ReplicaResync>().ConfigurePrimaryHttpMessageHandler(() => authority.Server.CreateHandler());
        // The sync token is requested by the library's token client, through an HttpClient of its own.
        builder.Services.AddHttpClient(TokenClientExtensions.HttpClientName(ReplicaResync.TokenClientName))
            .ConfigurePrimaryHttpMessageHandler(() => authority.Server.CreateHandler());
        var host = builder.Build();
        await host.StartAsync();
        return new RegionHost(region, host);
    }

    /// <summary>The live users of <paramref name="account"/> in this region's replica, by id.</summary>
    public async Task<Dictionary<string, ReplicaUser>> UsersAsync(Guid account)
    {
        await using var scope = _host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegionReplicaDbContext>();
        return await db.ReplicaUsers.AsNoTracking().Where(u => u.AccountId == account && !u.Deleted).ToDictionaryAsync(u => u.UserId);
    }

    public async Task<ReplicaUser?> UserAsync(string userId)
    {
        await using var scope = _host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegionReplicaDbContext>();
        return await db.ReplicaUsers.AsNoTracking().SingleOrDefaultAsync(u => u.UserId == userId);
    }

    /// <summary>Empties the replica, as if the region's database was lost.</summary>
    public async Task EmptyAsync()
    {
        await using var scope = _host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegionReplicaDbContext>();
        await db.ReplicaUsers.ExecuteDeleteAsync();
        await db.ReplicaAccounts.ExecuteDeleteAsync();
    }

    public async Task<ReplicaResyncResult> ResyncAsync()
    {
        await using var scope = _host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<IReplicaResync>().RunAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }
}
