using Identity.RegionSample.Api;
using Identity.RegionSample.Pages;
using Identity.RegionSample.Replica;
using Identity.RegionSample.SignIn;
using Identity.RegionSample.Telemetry;

var builder = WebApplication.CreateBuilder(args);

builder.AddRegionSignIn();
builder.AddRegionReplica();
builder.AddRegionApi();
builder.AddRegionTelemetry();

var app = builder.Build();

app.UseAuthentication();
app.UseAuthorization();
app.MapRegionPages();
app.MapReplicaPages();
app.MapRegionApi();

await app.RunAsync();

public partial class Program;
