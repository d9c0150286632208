using System.Net;
using System.Net.Http.Headers;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>Admin-API callers as they exist in production: a platform-admin client (client credentials) and people signing in.</summary>
public static class AdminClients
{
    /// <summary>An HttpClient carrying a client-credentials token of the declared platform-admin client.</summary>
    public static async Task<HttpClient> PlatformAdminAsync<TDatabase>(this ServerFixture<TDatabase> fixture) where TDatabase : TestDatabase, new()
    {
        var body = await ResponseAssert.StatusAsync(
            await fixture.Client.ClientCredentialsAsync("platform-admin", fixture.BasicSecret, "identity.admin"), HttpStatusCode.OK);
        return fixture.WithBearer(body.GetProperty("access_token").GetString()!);
    }

    /// <summary>An HttpClient carrying the access token a person gets by signing in at the admin console (code + PKCE).</summary>
    public static async Task<HttpClient> AsUserAsync<TDatabase>(this ServerFixture<TDatabase> fixture, string email, string password)
        where TDatabase : TestDatabase, new()
    {
        var redirect = ServerFixture<TDatabase>.AdminConsole + "/signin-oidc";
        var (verifier, challenge) = BrowserSession.Pkce();
        var browser = new BrowserSession(fixture.Server);
        var callback = await browser.AuthorizeAsync(
            BrowserSession.AuthorizeUrl("admin-console", redirect, challenge, ("scope", "openid identity.admin")), email, password);
        var tokens = await ResponseAssert.StatusAsync(
            await fixture.Client.RedeemCodeAsync(callback, verifier, redirect, ("admin-console", fixture.WebSecret)), HttpStatusCode.OK);
        return fixture.WithBearer(tokens.GetProperty("access_token").GetString()!);
    }

    public static HttpClient WithBearer<TDatabase>(this ServerFixture<TDatabase> fixture, string token) where TDatabase : TestDatabase, new()
    {
        var client = fixture.Server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>
    /// Creates a person through the user operation (test arrangement only, no HTTP): a platform user, or a member of
    /// <paramref name="account"/>, email confirmed.
    /// </summary>
    public static async Task<string> CreateUserAsync<TDatabase>(this ServerFixture<TDatabase> fixture, string email, string password,
        Guid? account = null) where TDatabase : TestDatabase, new()
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var created = await scope.ServiceProvider.GetRequiredService<UserOperations>().CreateAsync(
            new NewUser(account, email, null, account is null ? null : "member", EmailConfirmed: true), password,
            new Actor("test", null, null, null), CancellationToken.None);
        Assert.True(created.Result.Succeeded, $"{created.Result.Outcome} {created.Result.Detail} {string.Join("; ", created.Result.Errors?.SelectMany(e => e.Value) ?? [])}");
        return created.User.Id;
    }

    /// <summary>A new member of a new account with these settings (<c>PUT /admin/v1/accounts/{id}/settings</c>); returns the email.</summary>
    public static async Task<string> UserInAccountWithPolicyAsync<TDatabase>(this ServerFixture<TDatabase> fixture, string policyJson, string password)
        where TDatabase : TestDatabase, new()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", """{"name":"Policy Co"}"""),
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var etag = (await platform.GetAsync($"/admin/v1/accounts/{account}")).Headers.ETag!.Tag;
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/accounts/{account}/settings", policyJson, etag), HttpStatusCode.OK);
        var email = $"policy-{Guid.NewGuid():n}@example.test";
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $$"""{"email":"{{email}}","role":"member","password":"{{password}}"}"""), HttpStatusCode.Created);
        return email;
    }

    public static Task<HttpResponseMessage> SendJsonAsync(this HttpClient client, HttpMethod method, string url, string? json, string? ifMatch = null)
    {
        var request = new HttpRequestMessage(method, url);
        if (json is not null)
        {
            request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        return client.SendAsync(request);
    }
}
