using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Data;
using Identity.Server.Clients;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Identity.InteropTests.Infrastructure;

/// <summary>
/// Identity (its real Program) on Kestrel at a free port of 127.0.0.1, on a database of one provider, configured only
/// through settings as an operator would, with one client per client-authentication method, a user, and a web app on
/// the stock ASP.NET Core OpenID Connect handler. One per test collection: every test uses its own browser.
/// </summary>
public class InteropFixture<TDatabase> : IAsyncLifetime where TDatabase : TestDatabase, new()
{
    public const string ServiceWithSecret = "svc-secret";
    public const string ServiceWithKey = "svc-jwt";
    public const string ServiceKeyId = "svc-jwt-1";
    public const string PublicClient = "spa";
    public const string WebClient = "web";
    public const string Api = "https://api.interop.test";

    /// <summary>The public client's callbacks: nothing listens there, the browser stops on the redirect.</summary>
    public static readonly Uri PublicRedirectUri = new("https://spa.interop.test/callback");

    public static readonly Uri PublicPostLogoutRedirectUri = new("https://spa.interop.test/signed-out");

    /// <summary>The confidential web client's callback (openid-client's side of it; nothing listens there either).</summary>
    public static readonly Uri WebRedirectUri = new("https://web.interop.test/callback");

    private readonly string _secrets = Path.Combine(Path.GetTempPath(), "identity-interop", Guid.NewGuid().ToString("n"));
    private readonly ECDsa _serviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private KestrelHost<Program>? _identity;
    private AspNetCoreRelyingParty? _aspNetCore;
    private OpenIdClientProcess? _openIdClient;

    public TDatabase Database { get; } = new();

    /// <summary>
    /// The issuer exactly as configured, and so exactly as every relying party must see it (OpenID Connect Discovery
    /// 1.0 §4.3, RFC 8414 §3.3). A host-only URL is written with its path "/", the form a URL parser gives it.
    /// </summary>
    public string Issuer { get; private set; } = "";

    public Uri Identity => new(Issuer);

    public AspNetCoreRelyingParty AspNetCore => _aspNetCore ?? throw new InvalidOperationException("Not started.");

    public string ServiceSecret { get; } = ClientSecretHasher.GenerateSecret();

    public string WebSecret { get; } = ClientSecretHasher.GenerateSecret();

    public Person User { get; } = new("ada@interop.test", "Pw-" + ClientSecretHasher.GenerateSecret());

    public string UserId { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var openIdClient = OpenIdClientProcess.StartAsync(); // npm ci (first run only) while the server starts
        await Database.InitializeAsync();
        Directory.CreateDirectory(_secrets);
        await File.WriteAllTextAsync(SecretFile(ServiceWithSecret), ServiceSecret);
        await File.WriteAllTextAsync(SecretFile(AspNetCoreRelyingParty.ClientId), WebSecret);
        await File.WriteAllTextAsync(SecretFile(WebClient), WebSecret);

        var ports = TestPorts.Take(2);
        Issuer = $"http://{KestrelHost.Loopback}:{ports[0]}/";
        _identity = new KestrelHost<Program>(ports[0], Settings(AspNetCoreRelyingParty.AddressAt(ports[1]))).Start();
        UserId = await CreateUserAsync();
        _aspNetCore = await AspNetCoreRelyingParty.StartAsync(ports[1], Issuer, WebSecret);
        _openIdClient = await openIdClient;
    }

    /// <summary>openid-client as the given client of this Identity.</summary>
    public NodeRelyingParty OpenIdClient(RelyingPartyClient client) =>
        new(_openIdClient ?? throw new InvalidOperationException("Not started."), Issuer, client);

    /// <summary>The private half of <see cref="ServiceWithKey"/>'s key, as a JWK for openid-client's <c>PrivateKeyJwt</c>.</summary>
    public JsonObject ServicePrivateJwk()
    {
        var key = _serviceKey.ExportParameters(includePrivateParameters: true);
        return new JsonObject
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["kid"] = ServiceKeyId,
            ["x"] = Base64UrlEncoder.Encode(key.Q.X),
            ["y"] = Base64UrlEncoder.Encode(key.Q.Y),
            ["d"] = Base64UrlEncoder.Encode(key.D),
        };
    }

    /// <summary>A fresh browser (no cookies) that knows Identity and the ASP.NET Core app as live sites.</summary>
    public UserAgent NewBrowser() => new(Identity, AspNetCore.BaseAddress);

    private string SecretFile(string clientId) => Path.Combine(_secrets, clientId + ".secret");

    private Dictionary<string, string?> Settings(Uri aspNetCoreApp)
    {
        var publicKey = _serviceKey.ExportParameters(includePrivateParameters: false);
        var jwks = new JsonObject
        {
            ["keys"] = new JsonArray(new JsonObject
            {
                ["kty"] = "EC",
                ["crv"] = "P-256",
                ["use"] = "sig",
                ["alg"] = "ES256",
                ["kid"] = ServiceKeyId,
                ["x"] = Base64UrlEncoder.Encode(publicKey.Q.X),
                ["y"] = Base64UrlEncoder.Encode(publicKey.Q.Y),
            }),
        };

        // Defaults everywhere else: the refresh-token reuse leeway and every lifetime are what an operator gets.
        var settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = Database.Provider.ToString(),
            ["Database:ConnectionString"] = Database.ConnectionString,
            ["Database:AutoMigrate"] = "true",
            ["Oidc:Issuer"] = Issuer,
            ["Oidc:AllowInsecureHttp"] = "true",
            // Every browser and client of these tests is at 127.0.0.1: the per-address throttles would count them as one.
            ["Throttling:ExemptLoopback"] = "true",
            ["Oidc:Scopes:0:Name"] = "api.read",
            ["Oidc:Scopes:0:Resources:0"] = Api,

            // client_secret_basic and client_secret_post (RFC 6749 §2.3.1).
            ["Oidc:Clients:0:ClientId"] = ServiceWithSecret,
            ["Oidc:Clients:0:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:0:Scopes:0"] = "api.read",
            ["Oidc:Clients:0:SecretFile"] = SecretFile(ServiceWithSecret),

            // private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9).
            ["Oidc:Clients:1:ClientId"] = ServiceWithKey,
            ["Oidc:Clients:1:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:1:Scopes:0"] = "api.read",
            ["Oidc:Clients:1:Jwks"] = jwks.ToJsonString(),

        };

        // A public client (no secret): PKCE is its only protection of the code (RFC 7636, RFC 9700 §2.1.1).
        AddCodeFlowClient(settings, 2, PublicClient, PublicRedirectUri, PublicPostLogoutRedirectUri, secretFile: null);
        // A confidential web app on openid-client (client_secret_basic).
        AddCodeFlowClient(settings, 3, WebClient, WebRedirectUri, null, SecretFile(WebClient));
        // A confidential web app on the ASP.NET Core handler (client_secret_post, the handler's choice).
        AddCodeFlowClient(settings, 4, AspNetCoreRelyingParty.ClientId, new Uri(aspNetCoreApp, "/signin-oidc"),
            new Uri(aspNetCoreApp, "/signout-callback-oidc"), SecretFile(AspNetCoreRelyingParty.ClientId));
        return settings;
    }

    private static void AddCodeFlowClient(
        Dictionary<string, string?> settings, int index, string clientId, Uri redirectUri, Uri? postLogoutRedirectUri, string? secretFile)
    {
        var prefix = $"Oidc:Clients:{index}:";
        settings[prefix + "ClientId"] = clientId;
        settings[prefix + "GrantTypes:0"] = "authorization_code";
        settings[prefix + "GrantTypes:1"] = "refresh_token";
        string[] scopes = ["openid", "profile", "email", "offline_access", "api.read"];
        for (var i = 0; i < scopes.Length; i++)
        {
            settings[prefix + $"Scopes:{i}"] = scopes[i];
        }

        settings[prefix + "RedirectUris:0"] = redirectUri.AbsoluteUri;
        if (postLogoutRedirectUri is not null)
        {
            settings[prefix + "PostLogoutRedirectUris:0"] = postLogoutRedirectUri.AbsoluteUri;
        }

        if (secretFile is not null)
        {
            settings[prefix + "SecretFile"] = secretFile;
        }
    }

    private async Task<string> CreateUserAsync()
    {
        await using var scope = _identity!.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = new ApplicationUser { UserName = User.Email, Email = User.Email, EmailConfirmed = true, DisplayName = "Ada Lovelace" };
        var created = await users.CreateAsync(user, User.Password);
        Assert.True(created.Succeeded, string.Join("; ", created.Errors.Select(e => e.Description)));
        return user.Id;
    }

    public async Task DisposeAsync()
    {
        if (_openIdClient is not null)
        {
            await _openIdClient.DisposeAsync();
        }

        if (_aspNetCore is not null)
        {
            await _aspNetCore.DisposeAsync();
        }

        if (_identity is not null)
        {
            await _identity.DisposeAsync();
        }

        _serviceKey.Dispose();
        if (Database.ConnectionString.Length > 0) // created: a failed start (no PostgreSQL) has nothing to drop
        {
            await Database.DisposeAsync();
        }

        try
        {
            Directory.Delete(_secrets, recursive: true);
        }
        catch (IOException)
        {
            // The temp folder is cleaned by the OS.
        }
    }
}

/// <summary>The interop suites on SQLite (the embedded default).</summary>
[CollectionDefinition(Name)]
public sealed class SqliteInterop : ICollectionFixture<InteropFixture<SqliteTestDatabase>>
{
    public const string Name = "Interop on SQLite";
}

/// <summary>The interop suites on PostgreSQL (the private cluster of <c>scripts/test.sh</c>).</summary>
[CollectionDefinition(Name)]
public sealed class PostgresInterop : ICollectionFixture<InteropFixture<PostgresTestDatabase>>
{
    public const string Name = "Interop on PostgreSQL";
}
