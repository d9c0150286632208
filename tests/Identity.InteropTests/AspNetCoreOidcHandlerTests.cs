using System.Net;
using System.Text.Json;
using Identity.InteropTests.Infrastructure;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.InteropTests;

/// <summary>
/// The stock ASP.NET Core OpenID Connect handler (<see cref="AspNetCoreRelyingParty"/>) signing a person in and out
/// through Identity: discovery, code + PKCE, form_post, the code exchange with client_secret_post, ID token and
/// userinfo validation are all the handler's.
/// </summary>
public abstract class AspNetCoreOidcHandlerTests<TDatabase>(InteropFixture<TDatabase> fixture) where TDatabase : TestDatabase, new()
{
    [Fact]
    public async Task SignIn_ThroughIdentity_AppHasTheUserAndTokens()
    {
        using var browser = fixture.NewBrowser();

        var page = await browser.OpenAsync(new Uri(fixture.AspNetCore.BaseAddress, "/me"), fixture.User);

        Assert.True(page.Status == HttpStatusCode.OK, $"{page.Status} at {page.Url}: {page.Html}");
        Assert.Equal(new Uri(fixture.AspNetCore.BaseAddress, "/me"), page.Url);
        using var me = JsonDocument.Parse(page.Html!);
        Assert.Equal(fixture.UserId, me.RootElement.GetProperty("sub").GetString());
        Assert.Equal(fixture.User.Email, me.RootElement.GetProperty("email").GetString());
        Assert.True(me.RootElement.GetProperty("idToken").GetBoolean());
        Assert.True(me.RootElement.GetProperty("accessToken").GetBoolean());
        Assert.True(me.RootElement.GetProperty("refreshToken").GetBoolean());
        Assert.Equal(1, browser.SignIns);
    }

    [Fact]
    public async Task SignOut_ThroughEndSession_EndsTheAppAndIdentitySessions()
    {
        using var browser = fixture.NewBrowser();
        await browser.OpenAsync(new Uri(fixture.AspNetCore.BaseAddress, "/me"), fixture.User);

        var confirmation = await browser.OpenAsync(new Uri(fixture.AspNetCore.BaseAddress, "/logout"));
        var back = await browser.SubmitAsync(confirmation);
        var again = await browser.OpenAsync(new Uri(fixture.AspNetCore.BaseAddress, "/me"));

        // The handler sent id_token_hint, post_logout_redirect_uri and state; Identity came back; the app's "/" says so.
        Assert.Equal(fixture.Issuer + "connect/endsession", confirmation.Url.GetLeftPart(UriPartial.Path));
        Assert.Equal((HttpStatusCode.OK, "signed out"), (back.Status, back.Html));
        Assert.Equal(new Uri(fixture.AspNetCore.BaseAddress, "/"), back.Url);
        // No session at Identity any more: the app's sign-in ends on Identity's sign-in page.
        Assert.Equal(fixture.Issuer + "Account/Login", again.Url.GetLeftPart(UriPartial.Path));
    }
}

[Collection(SqliteInterop.Name)]
public sealed class AspNetCoreOidcHandlerOnSqliteTests(InteropFixture<SqliteTestDatabase> fixture)
    : AspNetCoreOidcHandlerTests<SqliteTestDatabase>(fixture);

[Collection(PostgresInterop.Name)]
public sealed class AspNetCoreOidcHandlerOnPostgresTests(InteropFixture<PostgresTestDatabase> fixture)
    : AspNetCoreOidcHandlerTests<PostgresTestDatabase>(fixture);
