using System.Net;
using Identity.Server.Hosting;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// The issuer is published exactly as configured (OpenID Connect Discovery 1.0 §4.3, RFC 8414 §3.3, RFC 9207 §2.4:
/// clients compare it as a string), or the server refuses to start and says how to write it.
/// </summary>
public sealed class IssuerTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string EuRedirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";

    [Theory]
    [InlineData("http://localhost:5080", "http://localhost:5080/")]
    [InlineData("https://id.example.com", "https://id.example.com/")]
    [InlineData("HTTPS://ID.Example.com/", "https://id.example.com/")]
    [InlineData("https://id.example.com:443/tenant", "https://id.example.com/tenant")]
    public void Issuer_NotAsPublished_RefusesToStartSayingHowToWriteIt(string configured, string published)
    {
        var host = fixture.StartServer(settings => settings["Oidc:Issuer"] = configured);

        var error = Record.Exception(() => host.Start());

        Assert.NotNull(error);
        Assert.Contains($"write Oidc:Issuer as '{published}'", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://id.example.com/tenant")]
    [InlineData("https://id.example.com/tenant/")]
    [InlineData("http://localhost:5080/")]
    public async Task Issuer_AsPublished_IsTheDiscoveryTokenAndResponseIssuer(string issuer)
    {
        var client = fixture.StartServer(settings => settings["Oidc:Issuer"] = issuer).Start();

        var discovery = await ResponseAssert.StatusAsync(await client.GetAsync("/.well-known/openid-configuration"), HttpStatusCode.OK);
        var token = await ResponseAssert.StatusAsync(await client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read"), HttpStatusCode.OK);
        var refused = await client.GetAsync(BrowserSession.AuthorizeUrl("web-eu", EuRedirect, BrowserSession.Pkce().Challenge, ("prompt", "none")));

        Assert.Equal(issuer, discovery.GetProperty("issuer").GetString());
        Assert.Equal(issuer, new JsonWebToken(token.GetProperty("access_token").GetString()).Issuer);
        Assert.Equal(issuer, BrowserSession.Query(BrowserSession.Location(refused))["iss"]); // RFC 9207
    }

    [Theory]
    [InlineData("http://localhost:5080/", "http://localhost:5080/")]
    [InlineData("https://id.example.com/tenant", "https://id.example.com/tenant/")]
    public void Banner_ShowsTheIssuerAsPublishedAndUrlsBelowIt(string issuer, string below)
    {
        var lines = StartupBanner.Describe(issuer, demoClientExists: true).Split('\n').Select(l => l.Trim()).ToList();

        Assert.Contains($"Issuer:    {issuer}", lines);
        Assert.Contains($"Discovery: {below}.well-known/openid-configuration", lines);
        Assert.Contains($"JWKS:      {below}.well-known/jwks", lines);
        Assert.Contains(lines, l => l.StartsWith("A token:", StringComparison.Ordinal) && l.EndsWith($" {below}connect/token", StringComparison.Ordinal));
    }

    [Fact]
    public void Banner_WithoutTheDemoClient_ShowsNoCurlForIt()
    {
        var text = StartupBanner.Describe("https://id.example.com/", demoClientExists: false);

        Assert.DoesNotContain("curl", text, StringComparison.Ordinal);
        Assert.DoesNotContain("demo-m2m", text, StringComparison.Ordinal);
    }
}
