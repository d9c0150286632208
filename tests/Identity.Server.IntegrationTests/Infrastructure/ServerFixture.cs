using System.Security.Cryptography;
using Identity.Core.Data;
using Identity.Server.Clients;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>
/// A database of one provider plus the settings of a server on it: scopes, and one client per
/// client-authentication method. Tests start as many servers (replicas, restarts) on it as they need.
/// </summary>
public class ServerFixture<TDatabase> : IAsyncLifetime where TDatabase : TestDatabase, new()
{
    public const string Issuer = "http://localhost/";
    public const string Api = "https://api.test";
    public const string AdminApi = "https://admin.test";

    private readonly List<IdentityServerHost> _hosts = [];
    private readonly string _secrets = Path.Combine(Path.GetTempPath(), "identity-secrets", Guid.NewGuid().ToString("n"));

    public TDatabase Database { get; } = new();

    public string BasicSecret { get; } = ClientSecretHasher.GenerateSecret();

    public string ShortSecret { get; } = ClientSecretHasher.GenerateSecret();

    public ECDsa JwtClientKey { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public IdentityServerHost Server { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public string SecretFile(string name) => Path.Combine(_secrets, name);

    public async Task InitializeAsync()
    {
        await Database.InitializeAsync();
        Directory.CreateDirectory(_secrets);
        await File.WriteAllTextAsync(SecretFile("svc-basic"), BasicSecret);
        await File.WriteAllTextAsync(SecretFile("svc-short"), ShortSecret);
        await File.WriteAllTextAsync(SecretFile("web"), WebSecret);
        Server = StartServer();
        Client = Server.Start();

        await using var scope = Server.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = await users.FindByEmailAsync(UserEmail);
        if (user is null)
        {
            user = new ApplicationUser { UserName = UserEmail, Email = UserEmail, EmailConfirmed = true, DisplayName = "Ada Lovelace" };
            var created = await users.CreateAsync(user, UserPassword);
            Assert.True(created.Succeeded, string.Join("; ", created.Errors.Select(e => e.Description)));
        }

        UserId = user.Id;
    }

    public Dictionary<string, string?> Settings()
    {
        Dictionary<string, string?> settings;
        var publicKey = JwtClientKey.ExportParameters(includePrivateParameters: false);
        var jwks = $$"""{"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"svc-jwt-1","x":"{{Base64UrlEncoder.Encode(publicKey.Q.X)}}","y":"{{Base64UrlEncoder.Encode(publicKey.Q.Y)}}"}]}""";
        settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = Database.Provider.ToString(),
            ["Database:ConnectionString"] = Database.ConnectionString,
            ["Database:AutoMigrate"] = "true",
            ["Oidc:Issuer"] = Issuer,
            ["Oidc:AllowInsecureHttp"] = "true",
            ["Oidc:ApplicationCacheDuration"] = "00:00:01",
            // Tests change users and accounts through one server and sign in at another (or at the same database with a
            // test clock) and expect the change at once: no copies, as with the caches off (a test that needs them sets it).
            ["Oidc:UserCacheDuration"] = "00:00:00",
            ["Oidc:Scopes:0:Name"] = "api.read",
            ["Oidc:Scopes:0:Resources:0"] = Api,
            ["Oidc:Scopes:1:Name"] = "api.write",
            ["Oidc:Scopes:1:Resources:0"] = Api,
            ["Oidc:Scopes:2:Name"] = "admin.all",
            ["Oidc:Scopes:2:Resources:0"] = AdminApi,
            ["Oidc:Clients:0:ClientId"] = "svc-basic",
            ["Oidc:Clients:0:DisplayName"] = "Service with a secret",
            ["Oidc:Clients:0:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:0:Scopes:0"] = "api.read",
            ["Oidc:Clients:0:Scopes:1"] = "api.write",
            ["Oidc:Clients:0:SecretFile"] = SecretFile("svc-basic"),
            ["Oidc:Clients:1:ClientId"] = "svc-jwt",
            ["Oidc:Clients:1:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:1:Scopes:0"] = "api.read",
            ["Oidc:Clients:1:Jwks"] = jwks,
            ["Oidc:Clients:2:ClientId"] = "svc-short",
            ["Oidc:Clients:2:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:2:Scopes:0"] = "api.read",
            ["Oidc:Clients:2:SecretFile"] = SecretFile("svc-short"),
            ["Oidc:Clients:2:AccessTokenLifetime"] = "00:01:00",
        };
        AddWebClient(settings, 3, "web-eu", EuApp, firstParty: true);
        AddWebClient(settings, 4, "web-us", UsApp, firstParty: true);
        AddWebClient(settings, 5, "partner", PartnerApp, firstParty: false);
        settings["Oidc:Clients:6:ClientId"] = "platform-admin";
        settings["Oidc:Clients:6:GrantTypes:0"] = "client_credentials";
        settings["Oidc:Clients:6:Scopes:0"] = "identity.admin";
        settings["Oidc:Clients:6:PlatformAdmin"] = "true";
        settings["Oidc:Clients:6:SecretFile"] = SecretFile("svc-basic");
        AddWebClient(settings, 7, "admin-console", AdminConsole, firstParty: true);
        settings["Oidc:Clients:7:Scopes:4"] = "identity.admin";
        AddRegionClient(settings, 8, "eu");
        AddRegionClient(settings, 9, "us");
        return settings;
    }

    public const string EuApp = "https://eu.app.test";
    public const string UsApp = "https://us.app.test";
    public const string PartnerApp = "https://partner.example";
    public const string AdminConsole = "https://admin.console.test";
    public const string UserEmail = "ada@example.test";

    public string WebSecret { get; } = ClientSecretHasher.GenerateSecret();

    public string UserPassword { get; } = "Pw-" + ClientSecretHasher.GenerateSecret();

    public string UserId { get; private set; } = "";

    private void AddWebClient(Dictionary<string, string?> settings, int index, string clientId, string origin, bool firstParty)
    {
        var prefix = $"Oidc:Clients:{index}:";
        settings[prefix + "ClientId"] = clientId;
        settings[prefix + "DisplayName"] = clientId == "partner" ? "Partner Analytics" : $"Regional app {clientId}";
        settings[prefix + "GrantTypes:0"] = "authorization_code";
        settings[prefix + "GrantTypes:1"] = "refresh_token";
        settings[prefix + "Scopes:0"] = "openid";
        settings[prefix + "Scopes:1"] = "profile";
        settings[prefix + "Scopes:2"] = "email";
        settings[prefix + "Scopes:3"] = "offline_access";
        settings[prefix + "Scopes:4"] = "api.read";
        settings[prefix + "RedirectUris:0"] = origin + "/signin-oidc";
        settings[prefix + "PostLogoutRedirectUris:0"] = origin + "/signout-callback-oidc";
        settings[prefix + "SecretFile"] = SecretFile("web");
        settings[prefix + "FirstParty"] = firstParty ? "true" : "false";
    }

    /// <summary>A regional service's client: client credentials, bound to its region, allowed to resync it.</summary>
    private void AddRegionClient(Dictionary<string, string?> settings, int index, string region)
    {
        var prefix = $"Oidc:Clients:{index}:";
        settings[prefix + "ClientId"] = "region-" + region;
        settings[prefix + "GrantTypes:0"] = "client_credentials";
        settings[prefix + "Scopes:0"] = "identity.sync";
        settings[prefix + "Region"] = region;
        settings[prefix + "SecretFile"] = SecretFile("svc-basic");
    }

    /// <summary>A fresh browser session of the fixture's user signs in at web-eu's authorize request (PKCE S256): its code and verifier.</summary>
    public async Task<(string Code, string Verifier)> WebEuCodeAsync()
    {
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await new BrowserSession(Server).AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", EuApp + "/signin-oidc", challenge), UserEmail, UserPassword);
        return (BrowserSession.Query(callback)["code"], verifier);
    }

    /// <summary>Another server process on the same database (a replica, or the same server after a restart).</summary>
    public IdentityServerHost StartServer(Action<Dictionary<string, string?>>? change = null, Microsoft.Extensions.Logging.ILoggerProvider? logs = null)
    {
        var settings = Settings();
        change?.Invoke(settings);
        var host = new IdentityServerHost(settings, logs);
        lock (_hosts)
        {
            _hosts.Add(host);
        }

        return host;
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        JwtClientKey.Dispose();
        await Database.DisposeAsync();
        try
        {
            Directory.Delete(_secrets, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
