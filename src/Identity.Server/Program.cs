using Identity.Propagation;
using Identity.Server.Connect;
using Identity.Server.Hosting;
using Identity.Server.Sync;

var builder = WebApplication.CreateBuilder(args);

builder.AddIdentityStore();
builder.AddOidcServer();
builder.AddMutualTls();
builder.AddSignIn();
builder.AddSignInThrottling();
builder.AddTrustedProxies();
builder.AddPasskeys();
builder.AddEmail();
builder.AddAdminApi();
builder.AddAdminConsole();
builder.AddPropagation(HealthExtensions.ReadyTag);
builder.AddSyncApi();
builder.AddHealth();
builder.AddStoreOutageAnswer(); // 503 + Retry-After while the database cannot serve, never a 500 or a hang
builder.AddTelemetry();

var app = builder.Build();

if (args.Contains("migrate", StringComparer.Ordinal))
{
    await app.MigrateStoreAsync();
    return;
}

await app.InitializeStoreAsync();

app.UseManagementPort(); // Prometheus /metrics, on the management port only
app.UseExceptionHandler(); // a database outage: 503 (StoreOutageAnswer); anything else unexpected: RFC 9457 problem, no stack trace
app.UseForwardedClientCertificate(); // checks the socket's peer, so before UseForwardedHeaders replaces it
app.UseForwardedHeaders();
app.UseValidHostOnly();
app.UseSupportedCharsetsOnly();
app.UseSignInThrottling();
app.UseMiddleware<ProtocolRequestGuard>();
app.UseSignIn();
app.UseAuthentication();
app.UseAuthorization();
app.MapHealth();
app.MapSignIn();
app.MapAdminApi();
app.MapSyncApi();
app.MapStartupBanner();

await app.RunAsync();

public partial class Program;
