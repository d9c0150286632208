using Identity.RegionSample.Api;
using Identity.RegionSample.Pages;
using Identity.RegionSample.Replica;
using Identity.RegionSample.SignIn;

var builder = WebApplication.CreateBuilder(args);

builder.AddRegionSignIn();
builder.AddRegionReplica();
builder.AddRegionApi();

var app = builder.Build();

app.UseAuthentication();
app.UseAuthorization();
app.MapRegionPages();
app.MapReplicaPages();
app.MapRegionApi();

await app.RunAsync();

public partial class Program;
