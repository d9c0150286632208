using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Identity.Messaging.Tests.Propagation;

/// <summary>
/// Identity on a fresh PostgreSQL database (the cluster scripts/test.sh starts) with two processes on it: the
/// <see cref="Admin"/> server, which takes the admin API's changes and has no broker (its events wait in the outbox),
/// and the <see cref="Dispatcher"/> server, which publishes the outbox to the real broker. Regions <c>p-eu</c> and
/// <c>p-us</c> (their own queues, certificates and users) each run a <see cref="RegionHost"/>.
/// </summary>
public sealed class PropagationFixture : IAsyncLifetime
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "identity-propagation-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly string _database = "identity_propagation_" + Guid.NewGuid().ToString("n")[..12];
    private string _adminConnection = "";

    public BrokerFixture Broker { get; } = new();

    public string Secret { get; } = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public AuthorityHost Admin { get; private set; } = null!;

    public AuthorityHost? Dispatcher { get; private set; }

    public HttpClient Platform { get; private set; } = null!;

    public RegionHost Eu { get; private set; } = null!;

    public RegionHost Us { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        await File.WriteAllTextAsync(Path.Combine(_folder, "secret"), Secret);
        _adminConnection = Environment.GetEnvironmentVariable("IDENTITY_TEST_POSTGRES") is { Length: > 0 } cs
            ? cs
            : throw new InvalidOperationException("IDENTITY_TEST_POSTGRES is not set: run the tests through scripts/test.sh.");
        await using (var connection = new NpgsqlConnection(_adminConnection))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{_database}\"", connection);
            await create.ExecuteNonQueryAsync();
        }

        Admin = new AuthorityHost(Settings(broker: false));
        var client = Admin.Start();
        var token = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["scope"] = "identity.admin",
            ["client_id"] = "platform-admin", ["client_secret"] = Secret,
        }));
        token.EnsureSuccessStatusCode();
        var accessToken = (await token.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString();
        Platform = Admin.CreateClient();
        Platform.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        foreach (var region in new[] { "p-eu", "p-us" })
        {
            var put = await Platform.PutAsJsonAsync($"/admin/v1/regions/{region}", new { displayName = "Propagation " + region });
            put.EnsureSuccessStatusCode();
        }

        await StartDispatcherAsync();
        Eu = await RegionHost.StartAsync("p-eu", Broker, Admin, Secret, _folder);
        Us = await RegionHost.StartAsync("p-us", Broker, Admin, Secret, _folder);
    }

    /// <summary>Starts the publishing server (again, after <see cref="StopDispatcherAsync"/>).</summary>
    public Task StartDispatcherAsync()
    {
        Dispatcher = new AuthorityHost(Settings(broker: true));
        Dispatcher.Start();
        return Task.CompletedTask;
    }

    /// <summary>One more publishing server on the same database (a second replica), stopped by the caller.</summary>
    public AuthorityHost StartExtraDispatcher(IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var settings = Settings(broker: true);
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var host = new AuthorityHost(settings);
        host.Start();
        return host;
    }

    /// <summary>Runs <paramref name="change"/> on the authority's database directly (test arrangement).</summary>
    public async Task WithDatabaseAsync(Func<AuthorityDbContext, Task> change)
    {
        await using var scope = Admin.Services.CreateAsyncScope();
        await change(scope.ServiceProvider.GetRequiredService<AuthorityDbContext>());
    }

    /// <summary>Runs <paramref name="operation"/> with the authority's user operations (test arrangement without HTTP).</summary>
    public async Task WithUserOperationsAsync(Func<AuthorityDbContext, Core.Users.UserOperations, Task> operation)
    {
        await using var scope = Admin.Services.CreateAsyncScope();
        await operation(scope.ServiceProvider.GetRequiredService<AuthorityDbContext>(), scope.ServiceProvider.GetRequiredService<Core.Users.UserOperations>());
    }

    public async Task StopDispatcherAsync()
    {
        if (Dispatcher is not null)
        {
            await Dispatcher.DisposeAsync();
            Dispatcher = null;
        }
    }

    /// <summary>The authority's users of <paramref name="account"/>, by id.</summary>
    public async Task<Dictionary<string, ApplicationUser>> AuthorityUsersAsync(Guid account)
    {
        await using var scope = Admin.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return await db.Users.AsNoTracking().Where(u => u.AccountId == account).ToDictionaryAsync(u => u.Id);
    }

    public async Task<int> PendingAsync()
    {
        await using var scope = Admin.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return await db.Outbox.CountAsync(m => m.SentAt == null);
    }

    /// <summary>The settings of a server on this fixture's database, publishing to the broker when <paramref name="broker"/>.</summary>
    public Dictionary<string, string?> Settings(bool broker)
    {
        var secretFile = Path.Combine(_folder, "secret");
        var settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = "PostgreSql",
            ["Database:ConnectionString"] = new NpgsqlConnectionStringBuilder(_adminConnection) { Database = _database }.ConnectionString,
            ["Database:AutoMigrate"] = "true",
            ["Oidc:Issuer"] = "http://localhost/",
            ["Oidc:AllowInsecureHttp"] = "true",
            ["Oidc:Clients:0:ClientId"] = "platform-admin",
            ["Oidc:Clients:0:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:0:Scopes:0"] = "identity.admin",
            ["Oidc:Clients:0:PlatformAdmin"] = "true",
            ["Oidc:Clients:0:SecretFile"] = secretFile,
            ["Outbox:PollInterval"] = "00:00:00.200",
            ["Outbox:LeaseDuration"] = "00:00:03",
            ["Outbox:PublishTimeout"] = "00:00:05",
        };
        var index = 1;
        foreach (var region in new[] { "p-eu", "p-us" })
        {
            var prefix = $"Oidc:Clients:{index++}:";
            settings[prefix + "ClientId"] = "region-" + region;
            settings[prefix + "GrantTypes:0"] = "client_credentials";
            settings[prefix + "Scopes:0"] = "identity.sync";
            settings[prefix + "Region"] = region;
            settings[prefix + "SecretFile"] = secretFile;
        }

        if (broker)
        {
            var options = Broker.OptionsFor("identity");
            settings["Broker:Host"] = options.Host;
            settings["Broker:Port"] = options.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings["Broker:ServerName"] = options.ServerName;
            settings["Broker:CaCertificatePath"] = options.CaCertificatePath;
            settings["Broker:ClientCertificatePath"] = options.ClientCertificatePath;
        }

        return settings;
    }

    public async Task DisposeAsync()
    {
        await Eu.DisposeAsync();
        await Us.DisposeAsync();
        await StopDispatcherAsync();
        await Admin.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using (var connection = new NpgsqlConnection(_adminConnection))
        {
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_database}\" WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
        }

        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
