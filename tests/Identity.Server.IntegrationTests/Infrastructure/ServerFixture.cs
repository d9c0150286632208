using System.Security.Cryptography;
using Identity.Server.Clients;
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
        Server = StartServer();
        Client = Server.Start();
    }

    public Dictionary<string, string?> Settings()
    {
        var publicKey = JwtClientKey.ExportParameters(includePrivateParameters: false);
        var jwks = $$"""{"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"svc-jwt-1","x":"{{Base64UrlEncoder.Encode(publicKey.Q.X)}}","y":"{{Base64UrlEncoder.Encode(publicKey.Q.Y)}}"}]}""";
        return new Dictionary<string, string?>
        {
            ["Database:Provider"] = Database.Provider.ToString(),
            ["Database:ConnectionString"] = Database.ConnectionString,
            ["Database:AutoMigrate"] = "true",
            ["Oidc:Issuer"] = Issuer,
            ["Oidc:AllowInsecureHttp"] = "true",
            ["Oidc:ApplicationCacheDuration"] = "00:00:01",
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
    }

    /// <summary>Another server process on the same database (a replica, or the same server after a restart).</summary>
    public IdentityServerHost StartServer(Action<Dictionary<string, string?>>? change = null)
    {
        var settings = Settings();
        change?.Invoke(settings);
        var host = new IdentityServerHost(settings);
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
