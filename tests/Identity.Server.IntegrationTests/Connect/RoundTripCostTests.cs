using System.Net;
using Identity.Server.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>
/// The database work of the authorization-code round trip of a user who already has an SSO session, the flow of
/// bench/authcode-bench.sh: on the benchmark machine each SQL statement cost ~1.4 ms of server CPU (perf, EF Core and
/// Npgsql), so a new one per request should be a decision, not an accident.
/// </summary>
public sealed class RoundTripCostTests(ServerFixture<SqliteTestDatabase> fixture, ITestOutputHelper output)
    : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Redirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";

    [Fact]
    public async Task SignedInRoundTrip_AuthorizeAndToken_WithinTheirStatementBudgets()
    {
        var logs = new CapturedLogs();
        var settings = fixture.Settings();
        settings[$"Logging:{typeof(CapturedLogs).FullName}:LogLevel:Microsoft.EntityFrameworkCore.Database.Command"] = "Information";
        await using var host = new IdentityServerHost(settings, logs);
        var client = host.Start();
        var browser = new BrowserSession(host);
        await RoundTripAsync(browser, client, signIn: true);

        for (var i = 0; i < 3; i++)
        {
            var (authorize, token) = await RoundTripAsync(browser, client, signIn: false);

            // Authorize: the session's user; then the ad-hoc authorization and the code's entry with its payload, written
            // together (CodeIssuanceBatch: no read of the client's row, no separate payload update). Token: the code; the
            // user (still allowed to sign in?); the redemption. Access and ID tokens have no entry (TokenSigningPolicy).
            output.WriteLine($"authorize: {authorize.Count} statements\n  {string.Join("\n  ", authorize)}");
            output.WriteLine($"token: {token.Count} statements\n  {string.Join("\n  ", token)}");
            Assert.InRange(authorize.Count, 1, 3);
            Assert.InRange(token.Count, 1, 3);
        }

        async Task<(List<string> Authorize, List<string> Token)> RoundTripAsync(BrowserSession browser, HttpClient client, bool signIn)
        {
            var (verifier, challenge) = BrowserSession.Pkce();
            var url = BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid profile"));
            var before = Statements(logs).Count;
            var callback = signIn
                ? await browser.AuthorizeAsync(url, ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword)
                : BrowserSession.Location(await browser.GetAsync(url));
            var afterAuthorize = Statements(logs).Count;
            var response = await client.RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret));
            await ResponseAssert.StatusAsync(response, HttpStatusCode.OK);
            var all = Statements(logs);
            return (all[before..afterAuthorize], all[afterAuthorize..]);
        }
    }

    /// <summary>
    /// The SQL of every command executed so far, except the periodic refreshes of the process-wide caches: the scope
    /// catalogue (ScopeCatalog) and the clients by client_id (ClientApplicationManager).
    /// </summary>
    private static List<string> Statements(CapturedLogs logs) =>
        logs.Lines.Where(l => l.Contains("Microsoft.EntityFrameworkCore.Database.Command: Executed DbCommand", StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf(']', l.IndexOf("CommandTimeout=", StringComparison.Ordinal)) + 1)..].ReplaceLineEndings(" ").Trim())
            .Where(sql => !sql.Contains("FROM \"OpenIddictScopes\"", StringComparison.Ordinal)
                && !sql.Contains("\"ClientId\" = @", StringComparison.Ordinal))
            .Select(sql => sql[..Math.Min(sql.Length, 90)])
            .ToList();
}
