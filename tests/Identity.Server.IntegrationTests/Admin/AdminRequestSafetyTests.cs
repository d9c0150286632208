using System.Net;
using System.Net.Sockets;
using System.Text;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>
/// Requests that are not what they seem: paths with dot segments (which Kestrel resolves before routing), ids that
/// are not ids, bodies without a declared length, bytes that are not UTF-8. Each gets a 4xx problem; none reaches
/// a route it does not name, none answers 500.
/// </summary>
public abstract class AdminRequestSafetyTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private const int Limit = 64 * 1024;

    [Fact]
    public async Task DotSegmentsOnARealSocket_BadRequestAndTheParentRouteNeverRuns()
    {
        // Arrange: Kestrel, not the in-memory server, since Kestrel is what removes dot segments (RFC 3986 §5.2.4).
        var platform = await fixture.PlatformAdminAsync();
        var token = platform.DefaultRequestHeaders.Authorization!.Parameter!;
        var account = await AdminArrange.AccountAsync(platform, "eu");
        var user = await AdminArrange.UserAsync(platform, account, AdminArrange.Email("dots"), "member");
        await using var host = fixture.StartServer();
        var address = StartKestrel(host);
        var targets = new[]
        {
            $"/admin/v1/accounts/{account}/users/..",
            $"/admin/v1/accounts/{account}/users/%2e%2e",
            $"/admin/v1/accounts/{account}/users/.%2E",
            $"/admin/v1/accounts/{account}/users/./..",
            $"/admin/v1/accounts/{account}/users/{user}/../..",
            $"/admin/v1/accounts/{account}/regions/..",
            $"/admin/v1/accounts/{account}/users/%2e%2e%2f",
            $"/admin/v1/accounts/{account}/users%5c..",
            $"/admin/v1/accounts/{account}/users/x/..?force=1",
        };

        // Act
        foreach (var target in targets)
        {
            var (status, response) = await RawAsync(address, $"DELETE {target}", token, chunkedBytes: 0);
            Assert.True(status == 400, $"DELETE {target}: {response}");
            Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
        }

        // Assert: the account and its user are still there.
        await ResponseAssert.StatusAsync(await platform.GetAsync($"/admin/v1/accounts/{account}"), HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(await platform.GetAsync($"/admin/v1/accounts/{account}/users/{user}"), HttpStatusCode.OK);
    }

    [Fact]
    public async Task PathRefused_ClientAcceptsOnlyHtml_StillABadRequestProblem()
    {
        // The problem details service has no writer for Accept: text/html; the refusal must not become a 500.
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/admin/v1/accounts/{account}/users%5c..");
        request.Headers.Accept.ParseAdd("text/html");

        var response = await platform.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task UserRoutes_IdThatIsNotAnId_NotFoundProblemAndNothingDeleted()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");

        var delete = await platform.DeleteAsync($"/admin/v1/accounts/{account}/users/not-a-user-id");
        var disable = await platform.PostAsync($"/admin/v1/accounts/{account}/users/not-a-user-id/disable", null);

        Assert.Equal(HttpStatusCode.NotFound, delete.StatusCode);
        Assert.Equal("application/problem+json", delete.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, disable.StatusCode);
        await ResponseAssert.StatusAsync(await platform.GetAsync($"/admin/v1/accounts/{account}"), HttpStatusCode.OK);
    }

    [Fact]
    public async Task CreateAccount_ChunkedBodyOverTheLimitOnARealSocket_ContentTooLargeProblemBeforeTheEnd()
    {
        var token = (await fixture.PlatformAdminAsync()).DefaultRequestHeaders.Authorization!.Parameter!;
        await using var host = fixture.StartServer();
        var address = StartKestrel(host);

        var (status, response) = await RawAsync(address, "POST /admin/v1/accounts", token, chunkedBytes: 20 * 1024 * 1024);

        Assert.True(status == 413, response);
        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateAccount_DeclaredLengthOverTheLimit_ContentTooLargeProblem()
    {
        var platform = await fixture.PlatformAdminAsync();

        var response = await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", $$"""{"name":"{{new string('n', Limit)}}"}""");

        await ResponseAssert.StatusAsync(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task DeleteAccount_DeclaredBodyOverTheLimit_ContentTooLargeAndNothingDeleted()
    {
        // Found by scripts/bad-input.sh (seed 16): the delete reads no body, so the read limit never bit and it ran.
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");

        var response = await platform.SendJsonAsync(HttpMethod.Delete, $"/admin/v1/accounts/{account}", $$"""{"x":"{{new string('n', Limit)}}"}""");

        await ResponseAssert.StatusAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        await ResponseAssert.StatusAsync(await platform.GetAsync($"/admin/v1/accounts/{account}"), HttpStatusCode.OK);
    }

    public static TheoryData<string, byte[]> NotUtf8 => new()
    {
        { "settings", [.. """{"mfa":{"requirement":"o"""u8, 0xC3, 0x28, .. "\"}}"u8] },
        { "settings", [.. """{"mfa":{"requirement":"\ud800"}}"""u8] },
        { "settings", [.. """{"\udfff":1}"""u8] },
        { "account", [.. """{"name":"bad"""u8, 0xFF, .. "\"}"u8] },
        { "account", [.. """{"name":"\ud800x"}"""u8] },
        { "user", [.. """{"email":"a@example.test","role":"member","displayName":"x"""u8, 0xED, 0xA0, 0x80, .. "\"}"u8] },
    };

    [Theory]
    [MemberData(nameof(NotUtf8))]
    public async Task JsonBodies_InvalidUtf8OrLoneSurrogate_BadRequestProblem(string route, byte[] body)
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");
        var (method, url) = route switch
        {
            "settings" => (HttpMethod.Put, $"/admin/v1/accounts/{account}/settings"),
            "account" => (HttpMethod.Post, "/admin/v1/accounts"),
            _ => (HttpMethod.Post, $"/admin/v1/accounts/{account}/users"),
        };
        using var request = new HttpRequestMessage(method, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.TryAddWithoutValidation("If-Match", (await platform.GetAsync($"/admin/v1/accounts/{account}")).Headers.ETag!.Tag);

        var response = await platform.SendAsync(request);

        await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>Kestrel instead of the in-memory server: its request parsing (dot segments, chunked bodies) is under test.</summary>
    private static Uri StartKestrel(IdentityServerHost host)
    {
        host.UseKestrel(0);
        host.StartServer();
        return new Uri(host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    /// <summary>
    /// One HTTP/1.1 request written byte for byte (HttpClient would resolve dot segments first), with a chunked JSON
    /// body of <paramref name="chunkedBytes"/> when not zero. The response is read while the body is still being sent,
    /// and sending stops as soon as the response starts: a server that answers early is not waiting for the rest.
    /// </summary>
    private static async Task<(int Status, string Response)> RawAsync(Uri server, string requestLine, string token, int chunkedBytes)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        await using var stream = tcp.GetStream();
        var framing = chunkedBytes == 0 ? "Content-Length: 0" : "Content-Type: application/json\r\nTransfer-Encoding: chunked";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"{requestLine} HTTP/1.1\r\nHost: {server.Authority}\r\nAuthorization: Bearer {token}\r\n{framing}\r\nConnection: close\r\n\r\n"));
        var reading = new StreamReader(stream, Encoding.UTF8).ReadToEndAsync();
        try
        {
            await WriteChunkAsync(stream, "{\"name\":\"");
            var chunk = new string('n', 8192);
            for (var sent = 0; sent < chunkedBytes && !reading.IsCompleted; sent += chunk.Length)
            {
                await WriteChunkAsync(stream, chunk);
            }

            await WriteChunkAsync(stream, "\"}");
            await stream.WriteAsync("0\r\n\r\n"u8.ToArray());
        }
        catch (IOException)
        {
            // The server answered and closed the connection before the whole body was sent: that is the point.
        }

        var response = await reading;
        var status = response.Split(' ', 3) is [_, var code, ..] && int.TryParse(code, out var parsed) ? parsed : 0;
        return (status, response);

        async Task WriteChunkAsync(Stream to, string data)
        {
            if (chunkedBytes > 0)
            {
                await to.WriteAsync(Encoding.ASCII.GetBytes($"{data.Length:x}\r\n{data}\r\n"));
            }
        }
    }
}

public sealed class SqliteAdminRequestSafetyTests(ServerFixture<SqliteTestDatabase> fixture) : AdminRequestSafetyTests<SqliteTestDatabase>(fixture);

public sealed class PostgresAdminRequestSafetyTests(ServerFixture<PostgresTestDatabase> fixture) : AdminRequestSafetyTests<PostgresTestDatabase>(fixture);
