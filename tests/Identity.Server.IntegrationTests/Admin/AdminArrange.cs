using System.Net;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>Arrangements the admin API tests share: regions, accounts and people, made through the API itself.</summary>
internal static class AdminArrange
{
    public const string Password = "Correct-Horse-Battery-9";

    /// <summary>An email no other test uses.</summary>
    public static string Email(string who) => $"{who}-{Guid.NewGuid().ToString("n")[..10]}@example.test";

    public static async Task RegionAsync(HttpClient platform, string code) =>
        await ResponseAssert.StatusAsync(
            await platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/regions/{code}", $$"""{"displayName":"Region {{code}}"}"""), HttpStatusCode.OK);

    public static async Task<Guid> AccountAsync(HttpClient platform, params string[] regions)
    {
        foreach (var region in regions)
        {
            await RegionAsync(platform, region);
        }

        var list = string.Join(',', regions.Select(r => $"\"{r}\""));
        var body = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts",
            $$"""{"name":"Account {{Guid.NewGuid():n}}","regions":[{{list}}]}"""), HttpStatusCode.Created);
        return body.GetProperty("id").GetGuid();
    }

    public static async Task<string> UserAsync(HttpClient client, Guid account, string email, string role)
    {
        var body = await ResponseAssert.StatusAsync(await client.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $$"""{"email":"{{email}}","displayName":"{{role}}","role":"{{role}}","password":"{{Password}}"}"""), HttpStatusCode.Created);
        return body.GetProperty("user").GetProperty("id").GetString()!;
    }

    /// <summary>Sends with the resource's current ETag in If-Match (RFC 9110 §13.1.1).</summary>
    public static async Task<HttpResponseMessage> PatchCurrentAsync(HttpClient client, string url, string json)
    {
        var etag = (await client.GetAsync(url)).Headers.ETag?.Tag ?? "\"0\"";
        return await client.SendJsonAsync(HttpMethod.Patch, url, json, etag);
    }
}
