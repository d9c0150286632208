using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>
/// The real server (Program) on a Kestrel socket at 127.0.0.1, its log captured, and the targets the corpus aims at,
/// arranged through the server's own endpoints: tokens, two signed-in sessions, anti-forgery pairs, an account, a user,
/// a region and a client of the admin API.
/// </summary>
public sealed partial class BadInputServer : IAsyncLifetime
{
    private const string SignInEmail = "fuzz-signin@example.test";
    private readonly ServerFixture<SqliteTestDatabase> _fixture = new();
    private KestrelIdentityServer? _host;

    public ServerErrorLog Log { get; } = new();

    public IPEndPoint EndPoint { get; private set; } = null!;

    public CorpusTargets Targets { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await _fixture.InitializeAsync(); // migrations, keys, declared clients, the fixture's user
        var settings = _fixture.Settings();
        // The corpus sends thousands of sign-ins and token requests from 127.0.0.1: the throttle would answer most
        // of them 429 before the code under test runs (ThrottlingTests cover the throttle itself).
        settings["Throttling:ExemptLoopback"] = "true";
        _host = new KestrelIdentityServer(settings, Log);
        EndPoint = _host.Start();
        Targets = await ArrangeAsync();
    }

    public async Task DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        await _fixture.DisposeAsync();
    }

    private async Task<CorpusTargets> ArrangeAsync()
    {
        var password = "Pw-" + Guid.NewGuid().ToString("n");
        await using (var scope = _host!.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            foreach (var email in new[] { SignInEmail, "victim@example.test" })
            {
                var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true, LockoutEnabled = email != SignInEmail };
                var created = await users.CreateAsync(user, password);
                Assert.True(created.Succeeded, string.Join("; ", created.Errors.Select(e => e.Description)));
            }
        }

        using var anonymous = new UserAgent(EndPoint);
        var admin = await anonymous.ClientCredentialsAsync("platform-admin", _fixture.BasicSecret, "identity.admin");

        using var first = new UserAgent(EndPoint);
        var anonymousPair = await first.AntiforgeryAsync("/Account/Login");
        await first.SignInAsync(ServerFixture<SqliteTestDatabase>.UserEmail, _fixture.UserPassword);
        var (verifier, challenge) = BrowserSession.Pkce();
        var redirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";
        var code = await first.AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", redirect, challenge));
        var tokens = await anonymous.TokenAsync(("web-eu", _fixture.WebSecret),
            new("grant_type", "authorization_code"), new("code", code), new("redirect_uri", redirect), new("code_verifier", verifier));

        using var second = new UserAgent(EndPoint);
        await second.AntiforgeryAsync("/Account/Login");
        await second.SignInAsync(ServerFixture<SqliteTestDatabase>.UserEmail, _fixture.UserPassword);

        using var adminApi = new UserAgent(EndPoint, admin);
        const string region = "fz";
        await adminApi.SendAsync(HttpMethod.Put, $"/admin/v1/regions/{region}", """{"displayName":"Fuzz"}""");
        var account = await adminApi.SendAsync(HttpMethod.Post, "/admin/v1/accounts", $$"""{"name":"Fuzz","regions":["{{region}}"]}""");
        var accountId = account.GetProperty("id").GetGuid();
        var member = await adminApi.SendAsync(HttpMethod.Post, $"/admin/v1/accounts/{accountId}/users",
            """{"email":"member@fuzz.test","displayName":"Member","role":"member"}""");
        await adminApi.SendAsync(HttpMethod.Post, "/admin/v1/clients",
            """{"clientId":"fuzz-client","displayName":"Fuzz","authenticationMethod":"client_secret_basic","grantTypes":["client_credentials"],"scopes":["api.read"]}""");

        return new CorpusTargets
        {
            Issuer = ServerFixture<SqliteTestDatabase>.Issuer,
            AdminToken = admin,
            SyncToken = await anonymous.ClientCredentialsAsync("region-eu", _fixture.BasicSecret, "identity.sync"),
            ServiceToken = await anonymous.ClientCredentialsAsync("svc-basic", _fixture.BasicSecret, "api.read"),
            UserAccessToken = tokens.GetProperty("access_token").GetString()!,
            RefreshToken = tokens.GetProperty("refresh_token").GetString()!,
            IdToken = tokens.GetProperty("id_token").GetString()!,
            ClientAssertion = TokenClient.CreateClientAssertion("svc-jwt", _fixture.JwtClientKey, ServerFixture<SqliteTestDatabase>.Issuer),
            Session = first.Cookies(antiforgery: false),
            EndableSession = second.Cookies(antiforgery: false),
            Anonymous = anonymousPair,
            SignedIn = await first.AntiforgeryAsync("/Account/Totp"),
            EndableSignedIn = await second.AntiforgeryAsync("/Account/Totp"),
            BasicSecret = _fixture.BasicSecret,
            WebSecret = _fixture.WebSecret,
            SignInEmail = SignInEmail,
            SignInPassword = password,
            AccountId = accountId,
            AccountUserId = member.GetProperty("user").GetProperty("id").GetString()!,
            Region = region,
            ClientId = "fuzz-client",
        };
    }

    /// <summary>Program on Kestrel (a real socket), configured by settings, logging to <see cref="ServerErrorLog"/> only.</summary>
    private sealed class KestrelIdentityServer(IReadOnlyDictionary<string, string?> settings, ServerErrorLog log) : WebApplicationFactory<Program>
    {
        public IPEndPoint Start()
        {
            UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
            StartServer();
            var address = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            return new IPEndPoint(IPAddress.Loopback, new Uri(address).Port);
        }

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Testing");
            builder.UseSetting("DataProtection:AllowUnprotectedKeys", "true");
            builder.UseSetting(Core.Operations.ChangesOutsideOperations.SettingName, nameof(Core.Operations.OutsideChangeMode.Fail));
            foreach (var (key, value) in settings)
            {
                builder.UseSetting(key, value);
            }

            // The console would print every refused request of the corpus; the test reports what matters.
            builder.ConfigureLogging(logging => logging.ClearProviders().AddProvider(log));
        }
    }

    /// <summary>A browser-like client over the socket: its own cookies, no redirects followed, forms read for their token.</summary>
    private sealed partial class UserAgent : IDisposable
    {
        private readonly CookieContainer _cookies = new();
        private readonly HttpClient _http;
        private readonly Uri _base;

        public UserAgent(IPEndPoint server, string? bearer = null)
        {
            _base = new Uri($"http://{server}/");
            _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, CookieContainer = _cookies }) { BaseAddress = _base };
            if (bearer is not null)
            {
                _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            }
        }

        private string? _formToken;

        public void Dispose() => _http.Dispose();

        /// <summary>The Cookie header of this agent: the session cookies, or the anti-forgery cookie alone.</summary>
        public string Cookies(bool antiforgery) => string.Join("; ", _cookies.GetCookies(_base)
            .Where(c => c.Name.StartsWith(".AspNetCore.Antiforgery", StringComparison.Ordinal) == antiforgery)
            .Select(c => $"{c.Name}={c.Value}"));

        /// <summary>Reads a page's form token; paired with this agent's anti-forgery cookie.</summary>
        public async Task<Antiforgery> AntiforgeryAsync(string page)
        {
            var html = await Expect(await _http.GetAsync(page), HttpStatusCode.OK);
            _formToken = FormToken().Match(html) is { Success: true } match ? WebUtility.HtmlDecode(match.Groups["v"].Value)
                : throw new InvalidOperationException($"No anti-forgery token on {page}.");
            return new Antiforgery(Cookies(antiforgery: true), _formToken);
        }

        public async Task SignInAsync(string email, string password)
        {
            var response = await _http.PostAsync("/Account/Login", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Input.Email"] = email, ["Input.Password"] = password, ["__RequestVerificationToken"] = _formToken!,
            }));
            await Expect(response, HttpStatusCode.Redirect);
        }

        /// <summary>Authorize for a signed-in user of a first-party client: the code of the redirect back.</summary>
        public async Task<string> AuthorizeAsync(string url)
        {
            var response = await _http.GetAsync(url);
            await Expect(response, HttpStatusCode.Redirect);
            return QueryHelpers.ParseQuery(response.Headers.Location!.Query)["code"].ToString();
        }

        public async Task<string> ClientCredentialsAsync(string clientId, string secret, string scope) =>
            (await TokenAsync((clientId, secret), new("grant_type", "client_credentials"), new("scope", scope))).GetProperty("access_token").GetString()!;

        public async Task<JsonElement> TokenAsync((string Id, string Secret) client, params KeyValuePair<string, string>[] form)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token") { Content = new FormUrlEncodedContent(form) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{client.Id}:{client.Secret}")));
            return JsonDocument.Parse(await Expect(await _http.SendAsync(request), HttpStatusCode.OK)).RootElement.Clone();
        }

        public async Task<JsonElement> SendAsync(HttpMethod method, string path, string json)
        {
            using var request = new HttpRequestMessage(method, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            var response = await _http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {(int)response.StatusCode} {body}");
            return JsonDocument.Parse(body).RootElement.Clone();
        }

        private static async Task<string> Expect(HttpResponseMessage response, HttpStatusCode status)
        {
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == status, $"{response.RequestMessage?.RequestUri}: expected {(int)status}, got {(int)response.StatusCode} {body}");
            return body;
        }

        [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"(?<v>[^\"]*)\"")]
        private static partial Regex FormToken();
    }
}
