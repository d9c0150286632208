extern alias RegionSample;

using System.Security.Cryptography;
using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Users;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Identity.BrowserTests.Infrastructure;

/// <summary>
/// One world per test run: Identity on SQLite, three regional apps (the real <c>Identity.RegionSample</c>) signing in
/// through it, a user, and one Chromium. Every host listens on its own free port of 127.0.0.1; Identity may be
/// named <c>localhost</c> instead (<see cref="PasskeyFixture"/>).
/// </summary>
public class RegionsFixture : IAsyncLifetime
{
    public const string UserEmail = "ada@example.test";
    public const string PartnerDisplayName = "Partner Analytics";

    /// <summary>A declared confidential client that is the audience of <see cref="ResourceScope"/>'s tokens (it introspects them).</summary>
    public const string ResourceServerId = "orders-api";

    public const string ResourceScope = "orders.read";

    private readonly string _identityHost;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "identity-browser-tests", Guid.NewGuid().ToString("n"));
    private readonly List<IAsyncDisposable> _hosts = [];
    private IPlaywright? _playwright;
    private IBrowser? _browser;
    private IServiceProvider? _identityServices;

    public RegionsFixture()
        : this(KestrelHost.Loopback)
    {
    }

    protected RegionsFixture(string identityHost) => _identityHost = identityHost;

    public string UserPassword { get; } = $"Pw-{Secret()}-7a";

    public Uri Identity { get; private set; } = null!;

    /// <summary>The mail server Identity sends to (a real SMTP server in this process): tests read the emails here.</summary>
    public Identity.Server.IntegrationTests.Infrastructure.TestSmtpServer Smtp { get; } = new();

    /// <summary>The secret of the declared platform-admin client (<c>platform-admin</c>), for the admin API.</summary>
    public string PlatformAdminSecret { get; } = Secret();

    public string ResourceServerSecret { get; } = Secret();

    public Uri Eu { get; private set; } = null!;

    public Uri Us { get; private set; } = null!;

    public Uri Partner { get; private set; } = null!;

    /// <summary>The eu app's services, to arrange what its replica holds.</summary>
    public IServiceProvider EuServices { get; private set; } = null!;

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("The browser is not started.");

    /// <summary>Identity's services (a scope per use), for what a test arranges or checks behind the pages.</summary>
    public IServiceProvider IdentityServices => _identityServices ?? throw new InvalidOperationException("Identity is not started.");

    public async Task InitializeAsync()
    {
        Chromium.EnsureInstalled();
        Directory.CreateDirectory(_directory);

        Smtp.Start();
        var ports = TestPorts.Take(4);
        var apps = new[]
        {
            new RegionApp("eu", "region-eu", "Regional app (eu)", FirstParty: true, ports[1], Secret()),
            new RegionApp("us", "region-us", "Regional app (us)", FirstParty: true, ports[2], Secret()),
            new RegionApp("partner", "partner-app", PartnerDisplayName, FirstParty: false, ports[3], Secret()),
        };

        var server = Track(new KestrelHost<Program>(ports[0], await ServerSettingsAsync(_identityHost, ports[0], "identity", apps), _identityHost)).Start();
        Identity = server.BaseAddress;
        _identityServices = server.Services;
        await CreateUserAsync(UserEmail, "Ada");

        var regions = apps.Select(app => Track(new KestrelHost<RegionSample::Program>(app.Port, SampleSettings(app))).Start()).ToArray();
        (Eu, Us, Partner) = (regions[0].BaseAddress, regions[1].BaseAddress, regions[2].BaseAddress);
        EuServices = regions[0].Services;

        Assertions.SetDefaultExpectTimeout(15_000);
        _playwright = await Playwright.CreateAsync();
        _browser = await Chromium.LaunchAsync(_playwright);
    }

    /// <summary>A fresh cookie jar: no session at Identity nor at any region.</summary>
    public async Task<IBrowserContext> NewContextAsync()
    {
        var context = await Browser.NewContextAsync();
        context.SetDefaultTimeout(15_000);
        return context;
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.CloseAsync();
        }

        _playwright?.Dispose();
        foreach (var host in Enumerable.Reverse(_hosts))
        {
            await host.DisposeAsync();
        }

        await Smtp.DisposeAsync();

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a finishing host; the temp folder is cleaned by the OS.
        }
    }

    /// <summary>
    /// A second Identity, alone (no regional app, its own database) and on <paramref name="clock"/>, at 127.0.0.1: for a
    /// test that moves time, checked on Identity's own pages (and <paramref name="services"/>, e.g. a statement counter).
    /// The caller disposes it.
    /// </summary>
    public async Task<KestrelHost<Program>> StartIdentityAsync(TimeProvider clock, Action<IServiceCollection>? services = null)
    {
        var port = TestPorts.Next();
        var settings = await ServerSettingsAsync(KestrelHost.Loopback, port, "identity-" + Guid.NewGuid().ToString("n"), []);
        return new KestrelHost<Program>(port, settings, services: s =>
        {
            s.AddSingleton(clock);
            services?.Invoke(s);
        }).Start();
    }

    private async Task<Dictionary<string, string?>> ServerSettingsAsync(string host, int port, string database, IEnumerable<RegionApp> apps)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = nameof(DatabaseProvider.Sqlite),
            ["Database:ConnectionString"] = $"Data Source={Path.Combine(_directory, database + ".db")};Cache=Shared;Pooling=False",
            ["Database:AutoMigrate"] = "true",
            ["Oidc:Issuer"] = $"http://{host}:{port}/",
            ["Oidc:AllowInsecureHttp"] = "true",
            // Every browser in these tests signs in from 127.0.0.1: the per-IP throttle would count them as one client.
            ["Throttling:ExemptLoopback"] = "true",
        };
        Smtp.AddTo(settings);
        var adminSecretFile = Path.Combine(_directory, "platform-admin.secret");
        await File.WriteAllTextAsync(adminSecretFile, PlatformAdminSecret);
        var admin = $"Oidc:Clients:{apps.Count()}:";
        settings[admin + "ClientId"] = "platform-admin";
        settings[admin + "GrantTypes:0"] = "client_credentials";
        settings[admin + "Scopes:0"] = "identity.admin";
        settings[admin + "PlatformAdmin"] = "true";
        settings[admin + "SecretFile"] = adminSecretFile;

        // A resource server: the audience of ResourceScope, so it may introspect the tokens issued for that scope.
        var resourceSecretFile = Path.Combine(_directory, ResourceServerId + ".secret");
        await File.WriteAllTextAsync(resourceSecretFile, ResourceServerSecret);
        settings["Oidc:Scopes:0:Name"] = ResourceScope;
        settings["Oidc:Scopes:0:Resources:0"] = ResourceServerId;
        var resource = $"Oidc:Clients:{apps.Count() + 1}:";
        settings[resource + "ClientId"] = ResourceServerId;
        settings[resource + "GrantTypes:0"] = "client_credentials";
        settings[resource + "SecretFile"] = resourceSecretFile;

        foreach (var (app, index) in apps.Select((app, index) => (app, index)))
        {
            var secretFile = Path.Combine(_directory, app.ClientId + ".secret");
            await File.WriteAllTextAsync(secretFile, app.Secret);

            var prefix = $"Oidc:Clients:{index}:";
            settings[prefix + "ClientId"] = app.ClientId;
            settings[prefix + "DisplayName"] = app.DisplayName;
            settings[prefix + "GrantTypes:0"] = "authorization_code";
            settings[prefix + "GrantTypes:1"] = "refresh_token";
            settings[prefix + "Scopes:0"] = "openid";
            settings[prefix + "Scopes:1"] = "profile";
            settings[prefix + "Scopes:2"] = "email";
            settings[prefix + "Scopes:3"] = "offline_access";
            settings[prefix + "RedirectUris:0"] = $"http://127.0.0.1:{app.Port}/signin-oidc";
            settings[prefix + "PostLogoutRedirectUris:0"] = $"http://127.0.0.1:{app.Port}/signout-callback-oidc";
            settings[prefix + "SecretFile"] = secretFile;
            settings[prefix + "FirstParty"] = app.FirstParty ? "true" : "false";
        }

        return settings;
    }

    private Dictionary<string, string?> SampleSettings(RegionApp app) => new()
    {
        ["Identity:Authority"] = Identity.AbsoluteUri,
        ["Identity:ClientId"] = app.ClientId,
        ["Identity:ClientSecret"] = app.Secret,
        ["Identity:Region"] = app.Region,
        ["IdentityRegion:ReplicaConnectionString"] = $"Data Source={Path.Combine(_directory, $"replica-{app.Region}.db")}",
    };

    /// <summary>An HttpClient for Identity's admin API, with a token of the platform-admin client.</summary>
    public async Task<HttpClient> PlatformAdminAsync()
    {
        var client = new HttpClient { BaseAddress = Identity };
        var token = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["scope"] = "identity.admin",
            ["client_id"] = "platform-admin", ["client_secret"] = PlatformAdminSecret,
        }));
        token.EnsureSuccessStatusCode();
        using var body = System.Text.Json.JsonDocument.Parse(await token.Content.ReadAsStringAsync());
        client.DefaultRequestHeaders.Authorization = new("Bearer", body.RootElement.GetProperty("access_token").GetString());
        return client;
    }

    /// <summary>A user with <see cref="UserPassword"/>, no second factor.</summary>
    public async Task CreateUserAsync(string email, string displayName)
    {
        await using var scope = IdentityServices.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var created = await users.CreateAsync(
            new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true, DisplayName = displayName }, UserPassword);
        if (!created.Succeeded)
        {
            throw new InvalidOperationException("Could not create the test user: " + string.Join("; ", created.Errors.Select(e => e.Description)));
        }
    }

    /// <summary>
    /// A member of a new account with <paramref name="policyJson"/> as its settings, with <paramref name="password"/>
    /// set <paramref name="passwordAge"/> ago, at the shared Identity or at <paramref name="identity"/>'s. The age is
    /// arranged in the database rather than by moving Identity's clock.
    /// </summary>
    public async Task<string> CreateAccountMemberAsync(
        string policyJson, string password, TimeSpan passwordAge = default, IServiceProvider? identity = null)
    {
        // Through the account and user operations (events, versions, audit), as the admin API makes them.
        await using var scope = (identity ?? IdentityServices).CreateAsyncScope();
        var actor = new Actor("test", null, null, null);
        var accounts = scope.ServiceProvider.GetRequiredService<AccountOperations>();
        var (made, account) = await accounts.CreateAsync("Policy " + Guid.NewGuid().ToString("n")[..6], [], actor, CancellationToken.None);
        Assert.True(made.Succeeded, made.ToString());
        var settings = await accounts.ChangeSettingsAsync(account!, policyJson, actor, CancellationToken.None);
        Assert.True(settings.Succeeded, settings.ToString());

        var email = $"member-{Guid.NewGuid():n}@example.test";
        var created = await scope.ServiceProvider.GetRequiredService<UserOperations>().CreateAsync(
            new NewUser(account!.Id, email, "Grace", AccountRoles.Member, EmailConfirmed: true), password, actor, CancellationToken.None);
        Assert.True(created.Result.Succeeded, created.Result.ToString());
        if (passwordAge != default)
        {
            // Time travel for the password-age rule: two timestamps no region sees (not in the user's snapshot).
            var then = DateTimeOffset.UtcNow - passwordAge;
            await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.Where(u => u.Id == created.User.Id)
                .ExecuteUpdateAsync(u => u.SetProperty(x => x.CreatedAt, then).SetProperty(x => x.PasswordChangedAt, then));
        }

        return email;
    }

    private T Track<T>(T host) where T : IAsyncDisposable
    {
        _hosts.Add(host);
        return host;
    }

    /// <summary>256 random bits, base64url: a client secret or the body of a password.</summary>
    private static string Secret() => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));

    private sealed record RegionApp(string Region, string ClientId, string DisplayName, bool FirstParty, int Port, string Secret);
}

/// <summary>Every browser test runs in this one xunit collection, one after another, sharing one <see cref="RegionsFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class RegionsSuite : ICollectionFixture<RegionsFixture>
{
    public const string Name = "Regions";
}
